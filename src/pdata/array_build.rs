//! Building a `dm-array` from values given in index order: full array blocks, the last one
//! partly filled, indexed by a b-tree built with [`BtreeBuilder`].

use std::io;

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::cast::in_block;
use crate::pdata::array::{array_max_entries, ArrayBlockHeader, ARRAY_HEADER_SIZE};
use crate::pdata::btree::build::{btree_nodes, BtreeBuilder};
use crate::pdata::checksum::BlockKind;
use crate::pdata::io::Block;
use crate::pdata::write::BlockWriter;

/// Array blocks plus b-tree nodes of an array of `len` values of `value_size` bytes.
pub fn array_blocks(len: u64, value_size: u32) -> u64 {
    let ablocks = len.div_ceil(array_max_entries(value_size) as u64);
    ablocks + btree_nodes(ablocks, 8)
}

/// An array under construction; holds one array block in memory.
pub struct ArrayBuilder {
    value_size: usize,
    per_block: usize,
    block: Box<Block>,
    nr: usize,
    next_key: u64,
    tree: BtreeBuilder,
}

impl ArrayBuilder {
    /// A builder for values of `value_size` bytes.
    pub fn new(value_size: u32) -> ArrayBuilder {
        ArrayBuilder {
            value_size: value_size as usize,
            per_block: array_max_entries(value_size) as usize,
            block: Block::zeroed(),
            nr: 0,
            next_key: 0,
            tree: BtreeBuilder::new(8),
        }
    }

    /// Appends one value, given as its little-endian bytes.
    pub fn push(&mut self, w: &mut BlockWriter, value: &[u8]) -> io::Result<()> {
        let o = ARRAY_HEADER_SIZE + self.nr * self.value_size;
        self.block[o..o + self.value_size].copy_from_slice(value);
        self.nr += 1;
        if self.nr == self.per_block {
            self.flush(w)?;
        }
        Ok(())
    }

    fn flush(&mut self, w: &mut BlockWriter) -> io::Result<()> {
        ArrayBlockHeader {
            max_entries: in_block(self.per_block),
            nr_entries: in_block(self.nr),
            value_size: in_block(self.value_size),
            blocknr: 0,
        }
        .pack(&mut self.block);
        let loc = w.write_new(BlockKind::ARRAY_BLOCK, &mut self.block)?;
        let mut v = [0; 8];
        LE::write_u64(&mut v, loc);
        self.tree.push(w, self.next_key, &v)?;
        self.next_key += 1;
        self.nr = 0;
        self.block.fill(0);
        Ok(())
    }

    /// Writes the last array block and the b-tree; returns the array's root.
    pub fn finish(mut self, w: &mut BlockWriter) -> io::Result<u64> {
        if self.nr > 0 {
            self.flush(w)?;
        }
        self.tree.finish(w)
    }
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::pdata::io::{BlockIo, MemIo};
    use crate::pdata::walk::Walker;

    #[test]
    fn values_come_back_in_order_and_block_counts_match() {
        for len in [0u64, 1, 1018, 1019, 300_000] {
            let io = MemIo::new(array_blocks(len, 4) + 1);
            let mut w = BlockWriter::new(&io, 1, u64::MAX);
            let mut a = ArrayBuilder::new(4);
            for i in 0..len {
                a.push(&mut w, &(i as u32 * 7).to_le_bytes()).unwrap();
            }
            let root = a.finish(&mut w).unwrap();
            assert_eq!(w.end(), io.nr_blocks(), "{len}");
            let mut wk = Walker::new(&io, io.nr_blocks());
            let mut got = Vec::new();
            let top = wk.top();
            let ok = wk.walk_array("a", root, len, top, &mut |_, first, values: &[u32]| {
                assert_eq!(first, got.len() as u64);
                got.extend_from_slice(values);
            });
            assert!(
                ok && wk.problems().kept().is_empty(),
                "{len}: {:?}",
                wk.problems().kept()
            );
            assert!(got.iter().enumerate().all(|(i, v)| *v == i as u32 * 7));
        }
    }
}
