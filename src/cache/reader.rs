//! The public way to read dm-cache metadata from Rust: open it, read its superblock, list
//! which cache block holds which origin block. Read only, and in bounded memory: the
//! mappings are read one array block at a time as the iterator reaches them.
//!
//! Which origin blocks a cache holds, and which of them it has not written back:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let meta = dir.path().join("cache-meta.img");
//! # era_log_tools::cache::reader::example_metadata(&meta)?;
//! use era_log_tools::CacheMetadata;
//!
//! let md = CacheMetadata::open(&meta)?;
//! let sectors = u64::from(md.superblock().data_block_size);
//! for m in md.mappings()? {
//!     let m = m?;
//!     let origin = m.oblock * sectors;
//!     let state = if m.dirty { "dirty" } else { "clean" };
//!     println!("cache block {} holds origin sectors {origin}.. ({state})", m.cblock);
//! }
//! # let all: Vec<_> = md.mappings()?.collect::<Result<_, _>>()?;
//! # let got: Vec<_> = all.iter().map(|m| (m.cblock, m.oblock, m.dirty)).collect();
//! # assert_eq!(got, [(0, 7, false), (2, 3, true)]);
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use super::cursor::{ArrayCursor, BlockRead};
use super::error::CacheError;
use super::example::Synthetic;
use super::format::mapping::{MappingValue, MAPPING_VALUE_SIZE, M_DIRTY};
use super::format::superblock::{Superblock, CLEAN_SHUTDOWN, SUPERBLOCK_LOCATION, VERSION_1};
use super::format::{BLOCK_KINDS, SUPERBLOCK};
use crate::pdata::array::array_max_entries;
use crate::pdata::bitset::nr_words;
use crate::pdata::checksum::BlockKind;
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::{BlockIo, FileIo, MemIo, OpenMode};
use crate::pdata::space_map::MAX_METADATA_BLOCKS;
use crate::pdata::walk::Walker;

/// Structure names in messages.
const MAPPING_ARRAY: &str = "mapping array";
const DIRTY_BITSET: &str = "dirty bitset";

/// dm-cache metadata opened for reading: block 0, checked as the kernel checks it.
pub struct CacheMetadata {
    io: Box<dyn BlockIo + Send + Sync>,
    sb: Superblock,
    limit: u64,
    origin_blocks: Option<u64>,
}

/// One cache block that holds an origin block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// The cache block: sectors `cblock * data_block_size ..` of the cache device.
    pub cblock: u64,
    /// The origin block it holds: sectors `oblock * data_block_size ..` of the origin.
    pub oblock: u64,
    /// Whether the kernel takes it as dirty (not yet written back): the recorded flag
    /// when the last shutdown was clean, always when it was not (the kernel then writes
    /// every mapped block back).
    pub dirty: bool,
    /// The dirty flag as recorded at the last suspend (version 1: in the mapping;
    /// version 2: in the dirty bitset), whatever the shutdown.
    pub recorded_dirty: bool,
}

impl CacheMetadata {
    /// Opens metadata that no live cache is using: a file (locked against writers) or a
    /// block device (`O_EXCL`, `O_DIRECT`), and reads block 0.
    pub fn open(path: impl AsRef<Path>) -> Result<CacheMetadata, CacheError> {
        CacheMetadata::open_with(path.as_ref(), OpenMode::ReadExclusive)
    }

    /// Opens the metadata device of a cache that is **suspended**, which the kernel holds
    /// open (no `O_EXCL`; `O_DIRECT` still). dm-cache has no metadata snapshot: a running
    /// cache commits new mappings and reuses freed blocks under a reader. Suspending it
    /// commits (with its dirty state, when its metadata is read-write), and a suspended
    /// cache starts no commit until it is resumed, so block 0 and what it reaches stay as
    /// they are. The caller keeps the cache suspended until the mappings are read.
    pub fn open_suspended(path: impl AsRef<Path>) -> Result<CacheMetadata, CacheError> {
        CacheMetadata::open_with(path.as_ref(), OpenMode::ReadShared)
    }

    fn open_with(path: &Path, mode: OpenMode) -> Result<CacheMetadata, CacheError> {
        let io = FileIo::open_to_read(path, mode)?;
        CacheMetadata::from_io(Box::new(io))
    }

    /// Reads metadata from any block device of the library's (a file, memory). Refuses
    /// metadata flagged `needs_check`, and metadata whose space map counts more blocks
    /// than the device holds (a truncated copy).
    pub fn from_io(io: Box<dyn BlockIo + Send + Sync>) -> Result<CacheMetadata, CacheError> {
        let sb = read_superblock(io.as_ref())?;
        if sb.needs_check() {
            return Err(CacheError::NeedsCheck);
        }
        let device = io.nr_blocks();
        let mapped = sb.sm_root.nr_blocks.min(MAX_METADATA_BLOCKS);
        if mapped > device {
            let what = format!(
                "the space map counts {mapped} metadata blocks, the device holds only {device}: \
                 a truncated copy?"
            );
            return Err(superblock_fault(what).into());
        }
        let room = mapped.saturating_mul(u64::from(array_max_entries(MAPPING_VALUE_SIZE)));
        if u64::from(sb.cache_blocks) > room {
            let what = format!(
                "cache_blocks {} needs a larger mapping array than {mapped} metadata blocks hold",
                sb.cache_blocks
            );
            return Err(superblock_fault(what).into());
        }
        Ok(CacheMetadata {
            io,
            sb,
            limit: mapped,
            origin_blocks: None,
        })
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// This metadata, with the origin's size in cache blocks (`floor(origin sectors /
    /// data_block_size)`) known: a mapping to an origin block at or past it is an error.
    pub fn with_origin_blocks(mut self, blocks: u64) -> CacheMetadata {
        self.origin_blocks = Some(blocks);
        self
    }

    /// The bound every mapped origin block must be below: the origin's size if given,
    /// else, after a clean shutdown, what the discard geometry of the last suspend says
    /// of it (its discard blocks cover the origin, rounded up). `None` when neither is
    /// known: the metadata does not record the origin's size.
    pub fn origin_bound(&self) -> Option<u64> {
        if self.origin_blocks.is_some() {
            return self.origin_blocks;
        }
        let sb = &self.sb;
        if !sb.clean_shutdown() || sb.discard_block_size == 0 {
            return None;
        }
        let sectors = sb.discard_block_size.checked_mul(sb.discard_nr_blocks)?;
        Some(sectors / u64::from(sb.data_block_size))
    }

    /// The valid mappings, in cache-block order. Each block read is checked as it is
    /// reached: an error ends the iteration (the mappings before it came from intact
    /// blocks, but the list is incomplete). The array's and the dirty bitset's b-trees are
    /// walked before this returns.
    pub fn mappings(&self) -> Result<Mappings<'_>, CacheError> {
        let mut walker = Walker::new(self.io.as_ref(), self.limit).recognising(&BLOCK_KINDS);
        let n = u64::from(self.sb.cache_blocks);
        let map = ArrayCursor::open(&mut walker, MAPPING_ARRAY, self.sb.mapping_root, n)?;
        let dirty = match self.sb.version {
            VERSION_1 => None,
            _ => Some(ArrayCursor::open(
                &mut walker,
                DIRTY_BITSET,
                self.sb.dirty_root,
                nr_words(n),
            )?),
        };
        Ok(Mappings {
            walker,
            version: self.sb.version,
            clean: self.sb.flags & CLEAN_SHUTDOWN != 0,
            origin_bound: self.origin_bound(),
            map,
            dirty,
            values: Vec::new(),
            at: BlockRead { first: 0, loc: 0 },
            pos: 0,
            words: Vec::new(),
            words_first: 0,
            done: false,
        })
    }
}

fn superblock_fault(what: String) -> Error {
    Error::block("", SUPERBLOCK, SUPERBLOCK_LOCATION, Fault::Invalid(what))
}

/// Reads and checks block 0.
fn read_superblock(io: &dyn BlockIo) -> Result<Superblock, Error> {
    let fail = |fault| Error::block("", SUPERBLOCK, SUPERBLOCK_LOCATION, fault);
    if io.nr_blocks() == 0 {
        return Err(fail(Fault::OutOfRange { limit: 0 }));
    }
    let block = io
        .read_new(SUPERBLOCK_LOCATION)
        .map_err(|e| fail(Fault::Io(e.to_string())))?;
    Superblock::parse(&block).map_err(fail)
}

/// The valid mappings of a cache, read block by block ([`CacheMetadata::mappings`]).
pub struct Mappings<'a> {
    walker: Walker<'a>,
    version: u32,
    clean: bool,
    origin_bound: Option<u64>,
    map: ArrayCursor<u64>,
    dirty: Option<ArrayCursor<u64>>,
    /// The values of the mapping-array block being read, from `at.first` on.
    values: Vec<u64>,
    at: BlockRead,
    pos: usize,
    /// The words of the dirty-bitset block that covers it, from bit `words_first` on.
    words: Vec<u64>,
    words_first: u64,
    done: bool,
}

impl Iterator for Mappings<'_> {
    type Item = Result<Mapping, CacheError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = self.step();
        self.done = !matches!(step, Ok(Some(_)));
        step.map_err(CacheError::from).transpose()
    }
}

impl Mappings<'_> {
    /// Appends to `out` the valid mappings of the rest of the array block in hand, or of the
    /// next one: the listing a block at a time, for a caller that handles millions of
    /// mappings. `Ok(false)` past the last block; an error ends the listing, as with
    /// [`Iterator::next`] (`out` then holds the valid mappings before it in the block).
    pub fn next_block(&mut self, out: &mut Vec<Mapping>) -> Result<bool, CacheError> {
        if self.done {
            return Ok(false);
        }
        let filled = self.fill(out);
        self.done = !matches!(filled, Ok(true));
        filled.map_err(CacheError::from)
    }

    fn fill(&mut self, out: &mut Vec<Mapping>) -> Result<bool, Error> {
        if self.pos == self.values.len() && !self.next_values()? {
            return Ok(false);
        }
        while self.pos < self.values.len() {
            if let Some(m) = self.entry()? {
                out.push(m);
            }
        }
        Ok(true)
    }

    fn step(&mut self) -> Result<Option<Mapping>, Error> {
        loop {
            if self.pos == self.values.len() {
                if !self.next_values()? {
                    return Ok(None);
                }
                continue;
            }
            if let Some(m) = self.entry()? {
                return Ok(Some(m));
            }
        }
    }

    /// Reads the next block of the mapping array, and the dirty bits that cover it; false
    /// past the last.
    fn next_values(&mut self) -> Result<bool, Error> {
        match self.map.next_block(&self.walker, &mut self.values)? {
            None => Ok(false),
            Some(at) => {
                self.at = at;
                self.pos = 0;
                self.cover_dirty_bits(at.first)?;
                Ok(true)
            }
        }
    }

    /// Checks the entry at `pos` and moves past it: its mapping when it is valid.
    // Inlined into the loops over a block: a call per entry took a third of the listing.
    #[inline(always)]
    fn entry(&mut self) -> Result<Option<Mapping>, Error> {
        let cblock = self.at.first + self.pos as u64;
        let value = MappingValue::unpack(self.values[self.pos]);
        self.pos += 1;
        value
            .check(self.version)
            .map_err(|what| self.entry_fault(cblock, what))?;
        if !value.is_valid() {
            return Ok(None);
        }
        if let Some(bound) = self.origin_bound.filter(|&b| value.oblock >= b) {
            let what = format!(
                "maps origin block {}, past the origin's {bound} blocks",
                value.oblock
            );
            return Err(self.entry_fault(cblock, what));
        }
        let recorded_dirty = match self.version {
            VERSION_1 => value.flags & M_DIRTY != 0,
            _ => self.dirty_bit(cblock)?,
        };
        Ok(Some(Mapping {
            cblock,
            oblock: value.oblock,
            dirty: recorded_dirty || !self.clean,
            recorded_dirty,
        }))
    }

    fn entry_fault(&self, cblock: u64, what: String) -> Error {
        let f = Fault::Invalid(format!("cache block {cblock}: {what}"));
        Error::block(MAPPING_ARRAY, BlockKind::ARRAY_BLOCK, self.at.loc, f)
    }

    /// Reads the dirty-bitset block holding the bit of `cblock`, when the one in hand does
    /// not. A bitset block's 509 words cover exactly 64 mapping-array blocks, so the
    /// bitset's blocks are read in order, each once, and all of them.
    fn cover_dirty_bits(&mut self, cblock: u64) -> Result<(), Error> {
        let Some(cursor) = &mut self.dirty else {
            return Ok(());
        };
        let end = self.words_first + self.words.len() as u64 * 64;
        if cblock < end {
            return Ok(());
        }
        match cursor.next_block(&self.walker, &mut self.words)? {
            Some(at) => self.words_first = at.first * 64,
            None => self.words.clear(),
        }
        Ok(())
    }

    fn dirty_bit(&self, cblock: u64) -> Result<bool, Error> {
        let word = cblock
            .checked_sub(self.words_first)
            .and_then(|bit| self.words.get(crate::cast::index(bit / 64)));
        match word {
            Some(w) => Ok(w >> (cblock % 64) & 1 == 1),
            None => Err(Error::structure(
                DIRTY_BITSET,
                Fault::Invalid(format!("no bit for cache block {cblock}")),
            )),
        }
    }
}

/// Writes, at `path`, the small metadata the examples read: version 2, 4 cache blocks of
/// 64 KiB, block 0 holding origin block 7 (clean), block 2 origin block 3 (dirty). Not
/// part of the stable API.
#[doc(hidden)]
pub fn example_metadata(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let io = MemIo::new(16);
    let synthetic = Synthetic {
        version: 2,
        flags: CLEAN_SHUTDOWN,
        data_block_size: 128,
        cache_blocks: 4,
        origin_sectors: Some(16 * 128),
    };
    synthetic.write(&io, &|c| match c {
        0 => Some((7, false)),
        2 => Some((3, true)),
        _ => None,
    })?;
    std::fs::write(path, io.into_bytes())?;
    Ok(())
}
