//! Writing era metadata from scratch, as the kernel lays it out: every writeset in the
//! writeset tree, the era array, the metadata space map, and the superblock last.

use std::io;

use super::format::superblock::{
    Superblock, METADATA_BLOCK_SIZE_SECTORS, SUPERBLOCK_LOCATION, SUPERBLOCK_MAGIC,
    SUPERBLOCK_VERSION,
};
use super::format::writeset::{WritesetDisk, WRITESET_VALUE_SIZE};
use super::format::{BUILD_IN_PROGRESS, ERA_VALUE_SIZE};
use super::sink::{EraSink, Summary};
use crate::pdata::array_build::{array_blocks, ArrayBuilder};
use crate::pdata::bitset::{nr_words, WORD_SIZE};
use crate::pdata::btree::build::{btree_nodes, BtreeBuilder};
use crate::pdata::io::{Block, BlockIo, BLOCK_SIZE};
use crate::pdata::space_map::build::{space_map_blocks, write_space_map};
use crate::pdata::space_map::MAX_METADATA_BLOCKS;
use crate::pdata::write::BlockWriter;

/// The smallest output accepted, in bytes (what thin-provisioning-tools requires too).
pub const MIN_OUTPUT_BYTES: u64 = 40_960;

/// Why metadata could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The output is smaller than [`MIN_OUTPUT_BYTES`].
    // thin-provisioning-tools' words first: scripts look for them.
    #[error(
        "Output file too small. It holds {available} blocks of {BLOCK_SIZE} bytes; {}",
        needed_words(*.min_bytes)
    )]
    BelowMinimum {
        /// The smallest output that holds the metadata, in bytes (see [`min_output_bytes`]).
        min_bytes: Option<u64>,
        /// Blocks the output offers.
        available: u64,
    },
    /// The output cannot hold the metadata.
    #[error(
        "Output file too small. It holds {available} blocks of {BLOCK_SIZE} bytes; {}",
        needed_words(*.min_bytes)
    )]
    TooSmall {
        /// The smallest output that holds the metadata, in bytes (see [`min_output_bytes`]);
        /// `None` when no output can.
        min_bytes: Option<u64>,
        /// Blocks the output offers.
        available: u64,
    },
    /// The stream broke the [`EraSink`] contract.
    #[error("{0}")]
    Invalid(String),
    /// Writing failed.
    #[error("write error: {0}")]
    Io(#[from] io::Error),
}

/// What to say about the size an output needs: at least `min_bytes`, and how to make one.
pub fn needed_words(min_bytes: Option<u64>) -> String {
    match min_bytes {
        Some(n) => format!(
            "it must hold at least {n} bytes (truncate -s {n} FILE, or a device of that size)"
        ),
        None => format!(
            "no output can hold this metadata: a space map maps at most {MAX_METADATA_BLOCKS} \
             blocks of {BLOCK_SIZE} bytes"
        ),
    }
}

/// The smallest output, in bytes, that [`check_room`] accepts for metadata of `nr_blocks`
/// origin blocks and `nr_writesets` writesets whose blocks add up to `writeset_total`, or
/// `None` when no output can hold it. The space map grows with the output, so the size is
/// the least one that holds the metadata and its own space map.
pub fn min_output_bytes(nr_blocks: u32, nr_writesets: u64, writeset_total: u64) -> Option<u64> {
    let floor = MIN_OUTPUT_BYTES.div_ceil(BLOCK_SIZE as u64);
    let mut size = floor;
    loop {
        let needed = (fixed_blocks(nr_blocks, nr_writesets, size) + writeset_total).max(floor);
        if needed <= size {
            return Some(size * BLOCK_SIZE as u64);
        }
        if needed > MAX_METADATA_BLOCKS {
            return None;
        }
        // A larger output maps more blocks: try again with the size this one needed.
        size = needed;
    }
}

/// Blocks one writeset of `nr_bits` bits takes (its bitset's array blocks and b-tree).
pub fn writeset_blocks(nr_bits: u32) -> u64 {
    array_blocks(nr_words(nr_bits as u64), WORD_SIZE)
}

/// Blocks the metadata takes, besides the writesets' own (see [`writeset_blocks`]), on an
/// output whose space map covers `sm_blocks` blocks: the superblock, the writeset tree,
/// the era array and the space map.
pub fn fixed_blocks(nr_blocks: u32, nr_writesets: u64, sm_blocks: u64) -> u64 {
    1 + btree_nodes(nr_writesets, WRITESET_VALUE_SIZE)
        + array_blocks(nr_blocks as u64, ERA_VALUE_SIZE)
        + space_map_blocks(sm_blocks)
}

/// Blocks of `io` the space map will cover: all of them, up to what one index block maps.
pub fn space_map_size(io: &dyn BlockIo) -> u64 {
    io.nr_blocks().min(MAX_METADATA_BLOCKS)
}

/// Checks that `io` can hold metadata of `nr_blocks` origin blocks and writesets whose
/// blocks add up to `writeset_total` (see [`writeset_blocks`]).
pub fn check_room(
    io: &dyn BlockIo,
    nr_blocks: u32,
    nr_writesets: u64,
    writeset_total: u64,
) -> Result<(), BuildError> {
    let available = space_map_size(io);
    let needed = fixed_blocks(nr_blocks, nr_writesets, available) + writeset_total;
    let min_bytes = || min_output_bytes(nr_blocks, nr_writesets, writeset_total);
    if io.nr_blocks().saturating_mul(BLOCK_SIZE as u64) < MIN_OUTPUT_BYTES {
        return Err(BuildError::BelowMinimum {
            min_bytes: min_bytes(),
            available: io.nr_blocks(),
        });
    }
    if needed > available {
        return Err(BuildError::TooSmall {
            min_bytes: min_bytes(),
            available,
        });
    }
    Ok(())
}

/// An [`EraSink`] that writes binary metadata to a device. Block 0 is first overwritten with
/// [`BUILD_IN_PROGRESS`] and flushed, so that no old superblock can point into blocks being
/// rewritten; the new superblock is written last by [`EraBuilder::finish`], after a flush.
pub struct EraBuilder<'a> {
    w: BlockWriter<'a>,
    header: Option<Summary>,
    tree: Option<BtreeBuilder>,
    tree_root: Option<u64>,
    last_era: Option<u32>,
    writeset: Option<(u32, u32, u64, ArrayBuilder)>,
    eras: Option<(u64, ArrayBuilder)>,
    era_array_root: Option<u64>,
}

impl<'a> EraBuilder<'a> {
    /// A builder for metadata of `nr_blocks` origin blocks and writesets of the given
    /// lengths; fails before writing anything when `io` is too small for them.
    pub fn new(
        io: &'a dyn BlockIo,
        nr_blocks: u32,
        writeset_nr_bits: &[u32],
    ) -> Result<EraBuilder<'a>, BuildError> {
        let ws_total = writeset_nr_bits.iter().map(|&n| writeset_blocks(n)).sum();
        check_room(io, nr_blocks, writeset_nr_bits.len() as u64, ws_total)?;
        let mut marker = Block::zeroed();
        marker[..BUILD_IN_PROGRESS.len()].copy_from_slice(BUILD_IN_PROGRESS);
        io.write(SUPERBLOCK_LOCATION, &marker)?;
        io.flush()?;
        Ok(EraBuilder {
            w: BlockWriter::new(io, SUPERBLOCK_LOCATION + 1, space_map_size(io)),
            header: None,
            tree: Some(BtreeBuilder::new(WRITESET_VALUE_SIZE)),
            tree_root: None,
            last_era: None,
            writeset: None,
            eras: None,
            era_array_root: None,
        })
    }

    fn misuse(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
    }

    fn finish_tree(&mut self) -> io::Result<()> {
        if let Some(t) = self.tree.take() {
            self.tree_root = Some(t.finish(&mut self.w)?);
        }
        Ok(())
    }

    /// Writes the space map, flushes, writes the superblock and flushes again.
    pub fn finish(mut self) -> Result<(), BuildError> {
        let (Some(h), Some(tree_root), Some(era_array_root)) =
            (self.header, self.tree_root, self.era_array_root)
        else {
            return Err(BuildError::Invalid(
                "the metadata stream ended early".into(),
            ));
        };
        let sm_blocks = space_map_size(self.w.io());
        let sm_root = write_space_map(&mut self.w, sm_blocks)?;
        let io = self.w.io();
        io.flush()?;
        let sb = Superblock {
            // The kernel writes 0 and never reads the field; thin-provisioning-tools' restore
            // writes 1 ("clean"), which nothing reads either.
            flags: 0,
            blocknr: SUPERBLOCK_LOCATION,
            uuid: [0; 16],
            magic: SUPERBLOCK_MAGIC,
            version: SUPERBLOCK_VERSION,
            sm_root,
            data_block_size: h.block_size,
            metadata_block_size: METADATA_BLOCK_SIZE_SECTORS,
            nr_blocks: h.nr_blocks,
            current_era: h.current_era,
            current_writeset: WritesetDisk {
                nr_bits: h.nr_blocks,
                root: 0,
            },
            writeset_tree_root: tree_root,
            era_array_root,
            metadata_snap: 0,
        };
        let mut b = Block::zeroed();
        sb.pack(&mut b);
        self.w
            .write(super::format::SUPERBLOCK, SUPERBLOCK_LOCATION, &mut b)?;
        io.flush()?;
        Ok(())
    }
}

/// Appends `values` to the array `a`, each as the bytes `le` gives, and counts them in `n`.
/// Generic over `le` so that each caller's loop has it inlined: this runs once per word of a
/// writeset and once per block of the era array.
fn push_values<T: Copy, const N: usize>(
    a: &mut ArrayBuilder,
    w: &mut BlockWriter,
    n: &mut u64,
    values: &[T],
    le: impl Fn(T) -> [u8; N],
) -> io::Result<()> {
    for &x in values {
        a.push(w, &le(x))?;
    }
    *n += values.len() as u64;
    Ok(())
}

impl EraSink for EraBuilder<'_> {
    fn superblock_begin(&mut self, header: &Summary) -> io::Result<()> {
        self.header = Some(*header);
        Ok(())
    }

    fn writeset_begin(&mut self, era: u32, nr_bits: u32) -> io::Result<()> {
        if self.tree.is_none() || self.writeset.is_some() {
            return Err(Self::misuse("writeset out of place"));
        }
        if self.last_era.is_some_and(|l| l >= era) {
            return Err(Self::misuse("writesets not in ascending era"));
        }
        self.last_era = Some(era);
        self.writeset = Some((era, nr_bits, 0, ArrayBuilder::new(WORD_SIZE)));
        Ok(())
    }

    fn writeset_words(&mut self, words: &[u64]) -> io::Result<()> {
        let Some((_, _, n, a)) = self.writeset.as_mut() else {
            return Err(Self::misuse("words outside a writeset"));
        };
        push_values(a, &mut self.w, n, words, u64::to_le_bytes)
    }

    fn writeset_end(&mut self) -> io::Result<()> {
        let Some((era, nr_bits, n, a)) = self.writeset.take() else {
            return Err(Self::misuse("writeset end outside a writeset"));
        };
        if n != nr_words(nr_bits as u64) {
            return Err(Self::misuse("writeset of the wrong length"));
        }
        let root = a.finish(&mut self.w)?;
        let mut v = [0u8; WRITESET_VALUE_SIZE as usize];
        WritesetDisk { nr_bits, root }.pack(&mut v);
        match self.tree.as_mut() {
            Some(t) => t.push(&mut self.w, era as u64, &v),
            None => Err(Self::misuse("writeset out of place")),
        }
    }

    fn era_array_begin(&mut self) -> io::Result<()> {
        if self.writeset.is_some() || self.eras.is_some() || self.era_array_root.is_some() {
            return Err(Self::misuse("era array out of place"));
        }
        self.finish_tree()?;
        self.eras = Some((0, ArrayBuilder::new(ERA_VALUE_SIZE)));
        Ok(())
    }

    fn eras(&mut self, eras: &[u32]) -> io::Result<()> {
        let Some((n, a)) = self.eras.as_mut() else {
            return Err(Self::misuse("eras outside the era array"));
        };
        push_values(a, &mut self.w, n, eras, u32::to_le_bytes)
    }

    fn era_array_end(&mut self) -> io::Result<()> {
        let Some((n, a)) = self.eras.take() else {
            return Err(Self::misuse("era array end outside the era array"));
        };
        if Some(n) != self.header.map(|h| h.nr_blocks as u64) {
            return Err(Self::misuse("era array of the wrong length"));
        }
        self.era_array_root = Some(a.finish(&mut self.w)?);
        Ok(())
    }

    fn superblock_end(&mut self) -> io::Result<()> {
        self.finish_tree()
    }
}
