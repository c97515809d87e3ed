//! The public way to read dm-era metadata from Rust: open it (a file, a device, or a live
//! device's held metadata snapshot), read its superblock, list the origin blocks written
//! since an era. `era_invalidate` lists its ranges with the same calls.
//!
//! A backup tool that copies only what changed since its last run:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let meta = dir.path().join("era-meta.img");
//! # era_log_tools::era::reader::example_metadata(&meta)?;
//! use era_log_tools::EraMetadata;
//!
//! let md = EraMetadata::open(&meta)?;
//! let saved_era = 2; // what the previous run recorded
//! let sectors = u64::from(md.superblock().data_block_size);
//! for blocks in md.written_since(saved_era)?.ranges() {
//!     let (first, end) = (blocks.start * sectors * 512, blocks.end * sectors * 512);
//!     println!("copy bytes {first}..{end} of the origin");
//! }
//! // The next run asks for what was written from the current era on.
//! let next = md.next_written_since();
//! # assert_eq!(next, 3);
//! # let ranges: Vec<_> = md.written_since(saved_era)?.ranges().collect();
//! # assert_eq!(ranges, [0..3]);
//! # Ok(())
//! # }
//! ```

use std::io::Write;
use std::ops::Range;
use std::path::Path;

use super::format::superblock::Superblock;
use super::invalidate::listing::{write_while_reading, Format, Offline, StreamError, Units};
use super::invalidate::{
    list_written_since, wrapped_after_listing, written_since, ListError, Span, WrittenBlocks,
};
use super::view::View;
pub use crate::pdata::error::ReadError;
use crate::pdata::io::{BlockIo, FileIo, OpenMode};
use crate::pdata::report::Problem;

/// dm-era metadata opened for reading: block 0, or the held metadata snapshot it points at.
pub struct EraMetadata {
    io: Box<dyn BlockIo + Send + Sync>,
    view: View,
}

impl EraMetadata {
    /// Opens metadata that no live target is using: a file (locked against writers) or a
    /// block device (`O_EXCL`, `O_DIRECT`), and reads block 0.
    pub fn open(path: impl AsRef<Path>) -> Result<EraMetadata, ReadError> {
        EraMetadata::open_with(path.as_ref(), OpenMode::ReadExclusive, false)
    }

    /// Opens the metadata device of a live era target and reads the metadata snapshot it
    /// holds (`dmsetup message ERA 0 take_metadata_snap` first): the device is opened
    /// without `O_EXCL`, and only the snapshot's writeset tree and era array are followed,
    /// which the kernel leaves alone until the snapshot is dropped.
    pub fn open_held_snapshot(path: impl AsRef<Path>) -> Result<EraMetadata, ReadError> {
        EraMetadata::open_with(path.as_ref(), OpenMode::ReadShared, true)
    }

    fn open_with(path: &Path, mode: OpenMode, snapshot: bool) -> Result<EraMetadata, ReadError> {
        let io = FileIo::open_to_read(path, mode)?;
        EraMetadata::from_io(Box::new(io), snapshot)
    }

    /// Reads metadata from any block device of the library's (a file, memory), block 0's or
    /// with `snapshot` the held snapshot's.
    pub fn from_io(
        io: Box<dyn BlockIo + Send + Sync>,
        snapshot: bool,
    ) -> Result<EraMetadata, ReadError> {
        let view = View::open(io.as_ref(), snapshot)?;
        Ok(EraMetadata { io, view })
    }

    /// The superblock whose roots are read: block 0's, or the held snapshot's (whose
    /// `current_era` is the era that began when the snapshot was taken).
    pub fn superblock(&self) -> &Superblock {
        &self.view.sb
    }

    /// The superblock in block 0, whatever was opened.
    pub fn block0(&self) -> &Superblock {
        &self.view.block0
    }

    /// Whether this is the held snapshot.
    pub fn is_snapshot(&self) -> bool {
        self.view.snapshot
    }

    /// The `--written-since` era for the next incremental run: every write this read does
    /// not cover happened in it or later.
    pub fn next_written_since(&self) -> u32 {
        self.view.current_era()
    }

    /// The origin blocks written in era `since` or later, read from the writesets and the
    /// era array. Unreadable metadata is an error, never a shorter list.
    pub fn written_since(&self, since: u32) -> Result<WrittenSince, ReadError> {
        Ok(WrittenSince(written_since(
            self.io.as_ref(),
            &self.view,
            since,
        )?))
    }

    /// Writes the origin blocks written in era `since` or later to `out` as
    /// `era_invalidate` lists them, while they are read, in memory that does not grow with
    /// the origin (see [`write_while_reading`]); the problems that do not stop it go to
    /// `warn` as soon as they are known.
    pub fn write_written_since(
        &self,
        out: &mut dyn Write,
        format: Format,
        units: Units,
        since: u32,
        warn: &mut dyn FnMut(Problem),
    ) -> Result<(), StreamError> {
        let read = Offline::of(self, since);
        write_while_reading(
            out,
            self.io.as_ref(),
            &self.view,
            format,
            units,
            &read,
            warn,
        )
    }
}

impl EraMetadata {
    /// Hands `f` the origin blocks written in era `since` or later as half-open ranges of
    /// block numbers, ascending, while they are read, in memory that does not grow with the
    /// origin (a run may come in pieces that touch); the problems that do not stop it go to
    /// `warn`. Ranges handed on before damage was found are not taken back.
    pub fn each_written_since<E: Send>(
        &self,
        since: u32,
        f: &mut dyn FnMut(Range<u64>) -> Result<(), E>,
        warn: &mut dyn FnMut(Problem),
    ) -> Result<(), ListError<E>> {
        let mut each = |span: Span| -> Result<(), E> {
            for (begin, end) in span.runs_in(span.base(), span.end(), None) {
                f(begin..end)?;
            }
            Ok(())
        };
        let io = self.io.as_ref();
        let outcome = list_written_since(io, &self.view, since, &mut each, warn)?;
        match outcome.wrapped_at {
            Some(at) => Err(ListError::Metadata(wrapped_after_listing(&self.view, at))),
            None => Ok(()),
        }
    }
}

/// The origin blocks written since an era, one bit a block.
#[derive(Debug, Clone)]
pub struct WrittenSince(WrittenBlocks);

impl WrittenSince {
    /// The written blocks as maximal half-open ranges of block numbers, ascending.
    pub fn ranges(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.0.runs().map(|(begin, end)| begin..end)
    }

    /// The list as era_invalidate's listing writes it.
    pub fn blocks(&self) -> &WrittenBlocks {
        &self.0
    }

    /// Whether origin block `block` was written.
    pub fn contains(&self, block: u64) -> bool {
        self.0.contains(block)
    }

    /// The origin's length in blocks.
    pub fn nr_blocks(&self) -> u64 {
        self.0.nr_blocks
    }

    /// What did not stop the listing but should be seen (stray bits, eras above the
    /// current one, an era asked that the metadata has not reached).
    pub fn warnings(&self) -> &[Problem] {
        &self.0.warnings
    }

    /// The era asked is past the metadata's current era: nothing can have been written in
    /// it yet, and a saved era ahead of the metadata would make every later run list
    /// nothing.
    pub fn past_current_era(&self) -> bool {
        self.0.past_current_era
    }
}

/// The examples' metadata as XML, in the compact form of thin-provisioning-tools' tests
/// (docs/era-xml.md §5.1). Not part of the stable API.
#[doc(hidden)]
pub const EXAMPLE_XML: &str = r#"<superblock uuid="" block_size="128" nr_blocks="4" current_era="3">
  <writeset era="2" nr_bits="4">
    <marked block_begin="1" len="2"/>
  </writeset>
  <writeset era="3" nr_bits="4">
    <marked block_begin="0" len="1"/>
  </writeset>
  <era_array>
    <era block="0" era="1"/>
    <era block="2" era="1"/>
  </era_array>
</superblock>
"#;

/// Writes, at `path`, the small metadata the examples read: 4 blocks of 64 KiB, current era
/// 3, blocks 0-2 written in era 2 or later. Not part of the stable API.
#[doc(hidden)]
pub fn example_metadata(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::File::create(path)?.set_len(1 << 20)?;
    let out = FileIo::open(path, OpenMode::Write)?;
    super::restore::restore(Box::new(EXAMPLE_XML.as_bytes()), &out, &|_| ())?;
    Ok(())
}
