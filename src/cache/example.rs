//! dm-cache metadata written from a description, for the examples, the tests and the
//! benchmarks. The suite does not write cache metadata otherwise: this is not part of the
//! stable API.

use std::io;

use super::format::mapping::{MappingValue, MAPPING_VALUE_SIZE, M_DIRTY, M_VALID};
use super::format::superblock::{
    Superblock, METADATA_BLOCK_SIZE_SECTORS, SUPERBLOCK_LOCATION, SUPERBLOCK_MAGIC, VERSION_1,
};
use super::format::SUPERBLOCK;
use crate::pdata::array_build::{array_blocks, ArrayBuilder};
use crate::pdata::bitset::{nr_words, WORD_SIZE};
use crate::pdata::io::{Block, BlockIo};
use crate::pdata::seeded::SplitMix;
use crate::pdata::space_map::build::{space_map_blocks, write_space_map};
use crate::pdata::space_map::MAX_METADATA_BLOCKS;
use crate::pdata::write::BlockWriter;

/// Bytes per hint: smq's, as the kernel writes them.
const HINT_SIZE: u32 = 4;

/// What the metadata describes: its version, flags and geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synthetic {
    /// 1 or 2.
    pub version: u32,
    /// The superblock's flags.
    pub flags: u32,
    /// Cache block size in sectors.
    pub data_block_size: u32,
    /// Cache blocks.
    pub cache_blocks: u32,
    /// The origin's size in sectors, for the discard geometry the kernel writes at
    /// suspend; `None` leaves it as a fresh format does (no discard blocks).
    pub origin_sectors: Option<u64>,
}

/// The mapping of a cache block: `Some((origin block, dirty))`, or `None` when unmapped.
pub type MappingOf<'a> = &'a dyn Fn(u64) -> Option<(u64, bool)>;

impl Synthetic {
    /// Writes the metadata on `io` from block 0, the superblock last.
    pub fn write(&self, io: &dyn BlockIo, mapping: MappingOf) -> io::Result<()> {
        let mut w = BlockWriter::new(io, SUPERBLOCK_LOCATION + 1, io.nr_blocks());
        let n = u64::from(self.cache_blocks);
        let mut map = ArrayBuilder::new(MAPPING_VALUE_SIZE);
        let mut words = Vec::new();
        for c in 0..n {
            let value = match mapping(c) {
                Some((oblock, dirty)) => {
                    let v1_dirty = dirty && self.version == VERSION_1;
                    let flags = M_VALID | if v1_dirty { M_DIRTY } else { 0 };
                    if dirty && self.version != VERSION_1 {
                        mark(&mut words, c);
                    }
                    MappingValue { oblock, flags }.pack()
                }
                None => 0,
            };
            map.push(&mut w, &value.to_le_bytes())?;
        }
        let mapping_root = map.finish(&mut w)?;
        // The hints the kernel writes at every suspend: smq's, 0 (level 0) for each block.
        let mut hints = ArrayBuilder::new(HINT_SIZE);
        for _ in 0..n {
            hints.push(&mut w, &[0; HINT_SIZE as usize])?;
        }
        let hint_root = hints.finish(&mut w)?;
        let dirty_root = match self.version {
            VERSION_1 => 0,
            _ => write_bitset(&mut w, &words, nr_words(n))?,
        };
        let (discard_block_size, discard_nr_blocks) = self.discard_geometry();
        let discard_root = write_bitset(&mut w, &[], nr_words(discard_nr_blocks))?;
        let sm_root = write_space_map(&mut w, io.nr_blocks().min(MAX_METADATA_BLOCKS))?;
        let sb = Superblock {
            flags: self.flags,
            blocknr: SUPERBLOCK_LOCATION,
            uuid: [0; 16],
            magic: SUPERBLOCK_MAGIC,
            version: self.version,
            policy_name: *b"smq\0\0\0\0\0\0\0\0\0\0\0\0\0",
            policy_hint_size: HINT_SIZE,
            sm_root,
            mapping_root,
            hint_root,
            discard_root,
            discard_block_size,
            discard_nr_blocks,
            data_block_size: self.data_block_size,
            metadata_block_size: METADATA_BLOCK_SIZE_SECTORS,
            cache_blocks: self.cache_blocks,
            compat_flags: 0,
            compat_ro_flags: 0,
            incompat_flags: 0,
            read_hits: 0,
            read_misses: 0,
            write_hits: 0,
            write_misses: 0,
            policy_version_major: 2,
            policy_version_minor: 0,
            policy_version_patch: 0,
            dirty_root,
        };
        let mut b = Block::zeroed();
        sb.pack(&mut b);
        w.write(SUPERBLOCK, SUPERBLOCK_LOCATION, &mut b)?;
        io.flush()
    }

    /// Metadata blocks [`Synthetic::write`] needs on a device of its own: the superblock,
    /// the arrays, and the space map of those blocks.
    pub fn metadata_blocks(&self) -> u64 {
        let n = u64::from(self.cache_blocks);
        let dirty = match self.version {
            VERSION_1 => 0,
            _ => array_blocks(nr_words(n), WORD_SIZE),
        };
        let discard = array_blocks(nr_words(self.discard_geometry().1), WORD_SIZE);
        // The space map's empty overflow tree is a leaf of its own.
        let arrays = array_blocks(n, MAPPING_VALUE_SIZE) + array_blocks(n, HINT_SIZE);
        let rest = SUPERBLOCK_LOCATION + 1 + arrays + dirty + discard + 1;
        // The space map counts itself too: one more bitmap at most.
        rest + space_map_blocks(rest) + 1
    }

    /// The kernel's discard geometry for the origin: from the cache block size, doubled
    /// while the origin has more than 16384 discard blocks of that size.
    fn discard_geometry(&self) -> (u64, u64) {
        let Some(origin) = self.origin_sectors else {
            return (0, 0);
        };
        let mut size = u64::from(self.data_block_size);
        while origin / size > 16_384 {
            size *= 2;
        }
        (size, origin.div_ceil(size))
    }
}

/// Sets bit `bit` in `words`, growing them as needed.
fn mark(words: &mut Vec<u64>, bit: u64) {
    let i = crate::cast::index(bit / 64);
    if words.len() <= i {
        words.resize(i + 1, 0);
    }
    words[i] |= 1 << (bit % 64);
}

/// Writes a bitset of `nr_words` words, those past `words` zero (an empty b-tree for none).
fn write_bitset(w: &mut BlockWriter, words: &[u64], nr_words: u64) -> io::Result<u64> {
    let mut a = ArrayBuilder::new(WORD_SIZE);
    for i in 0..nr_words {
        let word = words.get(crate::cast::index(i)).copied().unwrap_or(0);
        a.push(w, &word.to_le_bytes())?;
    }
    a.finish(w)
}

/// A mapping like a cache's after long use, reproducible from a seed: `mapped` of its
/// `cache_blocks` blocks hold distinct origin blocks spread over all `origin_blocks` of the
/// origin, `dirty` of those not yet written back. Which blocks are mapped, which are dirty,
/// and where they point are seeded permutations, so that neither the cache nor the origin
/// is filled in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spread {
    cache_blocks: u64,
    mapped: u64,
    dirty: u64,
    origin_blocks: u64,
    /// `rank(c) = (rank_step * c + rank_start) mod cache_blocks`: the cache blocks ranked
    /// below `mapped` are mapped, below `dirty` dirty.
    rank_step: u64,
    rank_start: u64,
    /// The origin block of rank `r`: `(origin_step * r + origin_start) mod origin_blocks`.
    origin_step: u64,
    origin_start: u64,
}

/// Why a [`Spread`] cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadError {
    /// More blocks mapped than the cache or the origin has.
    TooManyMapped,
    /// More blocks dirty than mapped.
    TooManyDirty,
}

impl std::fmt::Display for SpreadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SpreadError::TooManyMapped => "more blocks mapped than the cache or the origin has",
            SpreadError::TooManyDirty => "more blocks dirty than mapped",
        })
    }
}

impl std::error::Error for SpreadError {}

impl Spread {
    /// `mapped` of `cache_blocks` cache blocks hold distinct blocks of an origin of
    /// `origin_blocks` (in cache blocks), `dirty` of them dirty; `seed` chooses which.
    pub fn new(
        cache_blocks: u64,
        mapped: u64,
        dirty: u64,
        origin_blocks: u64,
        seed: u64,
    ) -> Result<Spread, SpreadError> {
        if mapped > cache_blocks || mapped > origin_blocks {
            return Err(SpreadError::TooManyMapped);
        }
        if dirty > mapped {
            return Err(SpreadError::TooManyDirty);
        }
        let mut rng = SplitMix(seed);
        Ok(Spread {
            cache_blocks,
            mapped,
            dirty,
            origin_blocks,
            rank_step: scattering_step(cache_blocks, &mut rng),
            rank_start: rng.below(cache_blocks),
            origin_step: scattering_step(origin_blocks, &mut rng),
            origin_start: rng.below(origin_blocks),
        })
    }

    /// The mapping of cache block `c`: `Some((origin block, dirty))`, or `None`.
    pub fn mapping(&self, c: u64) -> Option<(u64, bool)> {
        if c >= self.cache_blocks {
            return None;
        }
        let rank = affine(self.rank_step, c, self.rank_start, self.cache_blocks);
        (rank < self.mapped).then(|| {
            let o = affine(
                self.origin_step,
                rank,
                self.origin_start,
                self.origin_blocks,
            );
            (o, rank < self.dirty)
        })
    }
}

/// `(step * x + start) mod n`, without overflow.
// The remainder is below n, a u64.
#[allow(clippy::cast_possible_truncation)]
fn affine(step: u64, x: u64, start: u64, n: u64) -> u64 {
    ((u128::from(step) * u128::from(x) + u128::from(start)) % u128::from(n)) as u64
}

/// A step coprime to `n` (so that `x -> step * x mod n` permutes `0..n`) near a seeded
/// fraction of it between 1/3 and 2/3: neighbours land far apart.
fn scattering_step(n: u64, rng: &mut SplitMix) -> u64 {
    if n <= 2 {
        return 1;
    }
    let mut step = n / 3 + rng.below(n / 3);
    while gcd(step, n) != 1 {
        step += 1;
    }
    step
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
