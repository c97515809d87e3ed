//! A `dm-array` read one array block at a time, in index order: what lets the mappings of
//! a cache be listed in bounded memory. The array's b-tree is walked first, keeping only
//! the locations of its array blocks (8 bytes per block of values); the blocks themselves
//! are read and checked as the reader reaches them.

use std::marker::PhantomData;

use crate::pdata::array::{array_max_entries, ArrayBlockHeader, ARRAY_HEADER_SIZE};
use crate::pdata::checksum::BlockKind;
use crate::pdata::error::{Error, Fault};
use crate::pdata::unpack::{unpack_all, Unpack};
use crate::pdata::walk::Walker;

/// An array of `len` values of type `V` whose blocks are read on demand.
pub(crate) struct ArrayCursor<V> {
    structure: &'static str,
    per_block: u64,
    len: u64,
    /// The array blocks' locations, by key: never more than the length asks for.
    blocks: Vec<u64>,
    next: usize,
    values: PhantomData<V>,
}

/// Where a block of values starts in the array and where it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockRead {
    /// Index of its first value.
    pub first: u64,
    /// Its location.
    pub loc: u64,
}

fn invalid(structure: &str, what: String) -> Error {
    Error::structure(structure, Fault::Invalid(what))
}

impl<V: Unpack> ArrayCursor<V> {
    /// Walks the b-tree of the array at `root`, which should hold `len` values, checking
    /// the tree and that its keys are exactly the array blocks `len` needs.
    pub fn open(
        w: &mut Walker,
        structure: &'static str,
        root: u64,
        len: u64,
    ) -> Result<ArrayCursor<V>, Error> {
        let per_block = u64::from(array_max_entries(V::DISK_SIZE));
        let nr_blocks = len.div_ceil(per_block);
        let mut blocks: Vec<u64> = Vec::new();
        let mut bad: Option<Error> = None;
        let top = w.top();
        let intact = w.walk_btree(structure, root, top, &mut |_, key, loc: u64, _| {
            if bad.is_some() {
                return;
            }
            let next = blocks.len() as u64;
            if key >= nr_blocks {
                let what = format!("array block {key} is past the end of an array of {len} values");
                bad = Some(invalid(structure, what));
            } else if key != next {
                let what = format!("array block {next} is missing (next key is {key})");
                bad = Some(invalid(structure, what));
            } else {
                blocks.push(loc);
            }
        });
        if !intact {
            let first = w.problems().first_fatal().map(|p| p.error.clone());
            return Err(first.unwrap_or_else(|| invalid(structure, "unreadable b-tree".into())));
        }
        if let Some(e) = bad {
            return Err(e);
        }
        if blocks.len() as u64 != nr_blocks {
            let what = format!(
                "holds {} array blocks, but {len} values need {nr_blocks}",
                blocks.len()
            );
            return Err(invalid(structure, what));
        }
        Ok(ArrayCursor {
            structure,
            per_block,
            len,
            blocks,
            next: 0,
            values: PhantomData,
        })
    }

    /// Reads the next array block into `out` (its values inside the array's length), or
    /// `None` past the last. Every block must be full but the last, which holds the rest.
    pub fn next_block(&mut self, w: &Walker, out: &mut Vec<V>) -> Result<Option<BlockRead>, Error> {
        let Some(&loc) = self.blocks.get(self.next) else {
            return Ok(None);
        };
        let first = self.next as u64 * self.per_block;
        self.next += 1;
        let fail = |f| Error::block(self.structure, BlockKind::ARRAY_BLOCK, loc, f);
        let block = w.try_read(BlockKind::ARRAY_BLOCK, loc).map_err(fail)?;
        let h = ArrayBlockHeader::parse_verified(&block, V::DISK_SIZE).map_err(fail)?;
        let want = self.per_block.min(self.len - first);
        if u64::from(h.nr_entries) != want {
            let what = format!("holds {} values, expected {want}", h.nr_entries);
            return Err(fail(Fault::Invalid(what)));
        }
        let end = ARRAY_HEADER_SIZE + crate::cast::index(want) * V::DISK_SIZE as usize;
        unpack_all(&block[ARRAY_HEADER_SIZE..end], out);
        w.recycle(block);
        Ok(Some(BlockRead { first, loc }))
    }
}
