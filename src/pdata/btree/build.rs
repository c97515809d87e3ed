//! Building a b-tree bottom-up from entries given in ascending key order.
//!
//! Every node is filled to capacity except the last one or two of each level: when the last
//! node would be under one-third full, the last two share their entries evenly, so that no
//! non-root node is left under-full (a rule thin-provisioning-tools' checkers enforce).

use std::io;

use byteorder::{ByteOrder, LittleEndian as LE};

use super::node::{
    calc_max_entries, NodeHeader, INTERNAL_NODE, INTERNAL_VALUE_SIZE, LEAF_NODE, NODE_HEADER_SIZE,
};
use crate::cast::in_block;
use crate::pdata::checksum::BlockKind;
use crate::pdata::io::Block;
use crate::pdata::write::BlockWriter;

/// Nodes of a tree of `nr_entries` leaf entries of `value_size` bytes built by
/// [`BtreeBuilder`] (an empty tree is one empty leaf).
pub fn btree_nodes(nr_entries: u64, value_size: u32) -> u64 {
    let mut level = nr_entries
        .div_ceil(calc_max_entries(value_size) as u64)
        .max(1);
    let mut total = level;
    let fanout = calc_max_entries(INTERNAL_VALUE_SIZE) as u64;
    while level > 1 {
        level = level.div_ceil(fanout);
        total += level;
    }
    total
}

/// One level of the tree being built: entries not yet written to a node.
struct Level {
    flags: u32,
    value_size: usize,
    max: usize,
    keys: Vec<u64>,
    values: Vec<u8>,
    written: u64,
}

impl Level {
    fn new(flags: u32, value_size: u32) -> Level {
        Level {
            flags,
            value_size: value_size as usize,
            max: calc_max_entries(value_size) as usize,
            keys: Vec::new(),
            values: Vec::new(),
            written: 0,
        }
    }

    /// Writes the first `n` pending entries as one node; returns its first key and location.
    fn write_node(&mut self, w: &mut BlockWriter, n: usize) -> io::Result<(u64, u64)> {
        let mut b = Block::zeroed();
        NodeHeader {
            flags: self.flags,
            blocknr: 0,
            nr_entries: in_block(n),
            max_entries: in_block(self.max),
            value_size: in_block(self.value_size),
        }
        .pack(&mut b);
        for (i, k) in self.keys[..n].iter().enumerate() {
            LE::write_u64(&mut b[NODE_HEADER_SIZE + 8 * i..], *k);
        }
        let vstart = NODE_HEADER_SIZE + 8 * self.max;
        let vlen = n * self.value_size;
        b[vstart..vstart + vlen].copy_from_slice(&self.values[..vlen]);
        let first = self.keys.first().copied().unwrap_or(0);
        let loc = w.write_new(BlockKind::BTREE_NODE, &mut b)?;
        self.keys.drain(..n);
        self.values.drain(..vlen);
        self.written += 1;
        Ok((first, loc))
    }
}

/// A b-tree under construction. Holds at most two nodes' worth of entries per level.
pub struct BtreeBuilder {
    levels: Vec<Level>,
}

impl BtreeBuilder {
    /// A builder for a tree whose leaves hold `value_size`-byte values.
    pub fn new(value_size: u32) -> BtreeBuilder {
        BtreeBuilder {
            levels: vec![Level::new(LEAF_NODE, value_size)],
        }
    }

    /// Adds an entry; keys must be given in strictly ascending order.
    pub fn push(&mut self, w: &mut BlockWriter, key: u64, value: &[u8]) -> io::Result<()> {
        self.push_at(w, 0, key, value)
    }

    fn push_at(
        &mut self,
        w: &mut BlockWriter,
        level: usize,
        key: u64,
        value: &[u8],
    ) -> io::Result<()> {
        let l = &mut self.levels[level];
        debug_assert_eq!(value.len(), l.value_size);
        l.keys.push(key);
        l.values.extend_from_slice(value);
        // Two full nodes pending: the first can go, the second stays back in case the
        // level ends right after it and has to share with an under-full last node.
        if l.keys.len() == 2 * l.max {
            let max = l.max;
            let (first, loc) = l.write_node(w, max)?;
            self.push_parent(w, level, first, loc)?;
        }
        Ok(())
    }

    fn push_parent(
        &mut self,
        w: &mut BlockWriter,
        level: usize,
        key: u64,
        loc: u64,
    ) -> io::Result<()> {
        if self.levels.len() == level + 1 {
            self.levels
                .push(Level::new(INTERNAL_NODE, INTERNAL_VALUE_SIZE));
        }
        let mut v = [0; 8];
        LE::write_u64(&mut v, loc);
        self.push_at(w, level + 1, key, &v)
    }

    /// Writes what is pending and returns the root's location.
    pub fn finish(mut self, w: &mut BlockWriter) -> io::Result<u64> {
        let mut level = 0;
        loop {
            let top = level + 1 == self.levels.len();
            let l = &mut self.levels[level];
            let n = l.keys.len();
            if top && l.written == 0 && n <= l.max {
                return Ok(l.write_node(w, n)?.1);
            }
            let first_n = if n <= l.max {
                n
            } else if n - l.max < l.max / 3 {
                n.div_ceil(2)
            } else {
                l.max
            };
            let (k, loc) = l.write_node(w, first_n)?;
            self.push_parent(w, level, k, loc)?;
            let l = &mut self.levels[level];
            if !l.keys.is_empty() {
                let n = l.keys.len();
                let (k, loc) = l.write_node(w, n)?;
                self.push_parent(w, level, k, loc)?;
            }
            level += 1;
        }
    }
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::pdata::io::{BlockIo, MemIo};
    use crate::pdata::unpack::Unpack;
    use crate::pdata::walk::Walker;

    fn build(n: u64, vs: u32) -> (MemIo, u64, u64) {
        let io = MemIo::new(btree_nodes(n, vs) + 1);
        let mut w = BlockWriter::new(&io, 1, u64::MAX);
        let mut b = BtreeBuilder::new(vs);
        for k in 0..n {
            let mut v = vec![0u8; vs as usize];
            v[0] = k as u8;
            b.push(&mut w, k * 3, &v).unwrap();
        }
        let root = b.finish(&mut w).unwrap();
        let used = w.end() - 1;
        (io, root, used)
    }

    /// The first byte of an `N`-byte value.
    struct FirstByte<const N: usize>(u8);

    impl<const N: usize> Unpack for FirstByte<N> {
        const DISK_SIZE: u32 = N as u32;

        fn unpack(b: &[u8]) -> Self {
            FirstByte(b[0])
        }
    }

    /// Every `(key, first byte of the value)` of the tree at `root`, after checking that
    /// the walk finds nothing wrong.
    fn first_bytes<const N: usize>(io: &MemIo, root: u64) -> Vec<(u64, u8)> {
        let mut w = Walker::new(io, io.nr_blocks());
        let mut seen = Vec::new();
        let top = w.top();
        let ok = w.walk_btree("t", root, top, &mut |_, k, v: FirstByte<N>, _| {
            seen.push((k, v.0))
        });
        assert!(ok, "{:?}", w.problems().kept());
        assert!(w.problems().kept().is_empty(), "{:?}", w.problems().kept());
        seen
    }

    #[test]
    fn node_counts_match_the_prediction_and_the_walk_sees_every_entry() {
        for (n, vs) in [
            (0, 8),
            (1, 12),
            (201, 12),
            (202, 12),
            (268, 12),
            (403, 12),
            (252 * 252 + 5, 8),
        ] {
            let (io, root, used) = build(n, vs);
            assert_eq!(used, btree_nodes(n, vs), "{n} entries of {vs}");
            let seen = match vs {
                8 => first_bytes::<8>(&io, root),
                _ => first_bytes::<12>(&io, root),
            };
            let expected: Vec<(u64, u8)> = (0..n).map(|k| (k * 3, k as u8)).collect();
            assert_eq!(seen, expected);
        }
    }
}
