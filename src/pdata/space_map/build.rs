//! Writing the metadata space map of freshly built metadata, in which every block handed
//! out by the [`BlockWriter`] (and block 0) is referenced exactly once.

use std::io;

use super::bitmap::set_code;
use super::index::{IndexBlock, IndexEntry};
use super::root::SmRoot;
use super::{ENTRIES_PER_BITMAP, OVERFLOW_VALUE_SIZE};
use crate::pdata::btree::build::BtreeBuilder;
use crate::pdata::checksum::BlockKind;
use crate::pdata::io::Block;
use crate::pdata::write::BlockWriter;

/// Blocks the space map itself takes for a map of `nr_blocks` blocks: an empty overflow
/// tree, the bitmaps and the index block.
pub fn space_map_blocks(nr_blocks: u64) -> u64 {
    1 + nr_blocks.div_ceil(ENTRIES_PER_BITMAP) + 1
}

/// Allocates and writes a space map of `nr_blocks` blocks (the caller bounds it by the
/// device and [`super::MAX_METADATA_BLOCKS`]) that gives count 1 to every block below the
/// writer's end, including the space map's own blocks, and 0 to the rest.
pub fn write_space_map(w: &mut BlockWriter, nr_blocks: u64) -> io::Result<SmRoot> {
    // No count reaches 3 in unshared metadata, so the overflow tree is an empty leaf.
    let ref_count_root = BtreeBuilder::new(OVERFLOW_VALUE_SIZE).finish(w)?;
    let nr_bitmaps = nr_blocks.div_ceil(ENTRIES_PER_BITMAP);
    let bitmaps = (0..nr_bitmaps)
        .map(|_| w.alloc())
        .collect::<io::Result<Vec<u64>>>()?;
    let index_loc = w.alloc()?;
    let used = w.end();
    let mut index = IndexBlock {
        entries: Vec::with_capacity(bitmaps.len()),
    };
    let mut b = Block::zeroed();
    for (k, &loc) in bitmaps.iter().enumerate() {
        let base = k as u64 * ENTRIES_PER_BITMAP;
        let allocated = used.saturating_sub(base).min(ENTRIES_PER_BITMAP);
        b.fill(0);
        for j in 0..allocated {
            set_code(&mut b, j, 1);
        }
        w.write(BlockKind::SM_BITMAP, loc, &mut b)?;
        // Both at most ENTRIES_PER_BITMAP (16,320).
        #[allow(clippy::cast_possible_truncation)]
        index.entries.push(IndexEntry {
            blocknr: loc,
            // Positions past the end of the map count as free, as the kernel counts them.
            nr_free: (ENTRIES_PER_BITMAP - allocated) as u32,
            none_free_before: allocated as u32,
        });
    }
    b.fill(0);
    index.pack(&mut b);
    w.write(BlockKind::SM_INDEX, index_loc, &mut b)?;
    Ok(SmRoot {
        nr_blocks,
        nr_allocated: used,
        bitmap_root: index_loc,
        ref_count_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::io::MemIo;
    use crate::pdata::space_map::check::{compare_counts, read_metadata_space_map};
    use crate::pdata::walk::Walker;

    #[test]
    fn counts_every_used_block_once_and_passes_the_checker() {
        for nr_blocks in [20u64, 16_320, 16_321, 40_000] {
            let io = MemIo::new(nr_blocks);
            let mut w = BlockWriter::new(&io, 1, nr_blocks);
            for _ in 0..5 {
                w.alloc().unwrap();
            }
            let root = write_space_map(&mut w, nr_blocks).unwrap();
            assert_eq!(root.nr_allocated, 6 + space_map_blocks(nr_blocks));
            let mut wk = Walker::counting(&io, nr_blocks);
            let top = wk.top();
            for loc in 0..6 {
                wk.follow(top, loc);
            }
            let stored = read_metadata_space_map(&mut wk, &root);
            compare_counts(&mut wk, &root, &stored);
            assert!(
                wk.problems().kept().is_empty(),
                "{nr_blocks}: {:?}",
                wk.problems().kept()
            );
        }
    }
}
