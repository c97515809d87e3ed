//! Small dm-cache metadata written from a description, for the examples, the tests and the
//! benchmarks. The suite does not write cache metadata otherwise: this is not part of the
//! stable API.

use std::io;

use super::format::mapping::{MappingValue, MAPPING_VALUE_SIZE, M_DIRTY, M_VALID};
use super::format::superblock::{
    Superblock, METADATA_BLOCK_SIZE_SECTORS, SUPERBLOCK_LOCATION, SUPERBLOCK_MAGIC, VERSION_1,
};
use super::format::SUPERBLOCK;
use crate::pdata::array_build::ArrayBuilder;
use crate::pdata::bitset::{nr_words, WORD_SIZE};
use crate::pdata::io::{Block, BlockIo};
use crate::pdata::space_map::build::write_space_map;
use crate::pdata::space_map::MAX_METADATA_BLOCKS;
use crate::pdata::write::BlockWriter;

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
            policy_hint_size: 4,
            sm_root,
            mapping_root,
            hint_root: 0,
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
