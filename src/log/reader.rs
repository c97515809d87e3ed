//! The public way to read a dm-log disk dirty log from Rust: which regions of a mirror are
//! out of sync, as the kernel would read them at activation. `log_dump` reads logs with
//! the same calls ([`LogImage::read`]), and reports more.
//!
//! A tool that resynchronises only what the log marks dirty:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let log_path = dir.path().join("mirror-log.img");
//! # era_log_tools::log::reader::example_log(&log_path)?;
//! use era_log_tools::DirtyLog;
//!
//! let log = DirtyLog::open(&log_path)?;
//! let region_sectors = 1024; // the mirror table's region size
//! for regions in log.out_of_sync() {
//!     let (first, end) = (regions.start * region_sectors, regions.end * region_sectors);
//!     println!("copy sectors {first}..{end} from the primary leg");
//! }
//! # assert_eq!(log.nr_regions(), 16);
//! # assert_eq!(log.out_of_sync().collect::<Vec<_>>(), [3..5, 9..10]);
//! # assert!(!log.in_sync(3) && log.in_sync(5));
//! # Ok(())
//! # }
//! ```

use std::ops::Range;
use std::path::Path;

use super::device::{logical_block_size, open};
use super::error::LogError;
use super::format::bitmap::Bitmap;
use super::image::{LogImage, ReadOptions};
use crate::pdata::io::OpenMode;

/// A disk log read as the kernel reads it: magic, version, region count, and the clean bit
/// of every region.
pub struct DirtyLog {
    nr_regions: u64,
    bitmap: Bitmap,
}

impl DirtyLog {
    /// Reads the log on a device no active mirror holds (`O_EXCL`, `O_DIRECT`) or in an
    /// image file, with the device's logical block size. A log whose header gives no region
    /// count (one LVM initialised and no kernel has loaded) is an error: its bits cannot be
    /// told from its padding.
    pub fn open(path: impl AsRef<Path>) -> Result<DirtyLog, LogError> {
        let path = path.as_ref();
        let io = open(path, OpenMode::ReadExclusive)?;
        let opts = ReadOptions::strict(logical_block_size(path, None)?);
        let image = LogImage::read(&io, &opts)?;
        Ok(DirtyLog {
            nr_regions: image.nr_regions,
            bitmap: image.bitmap(&io)?,
        })
    }

    /// The mirror's region count, as the header gives it.
    pub fn nr_regions(&self) -> u64 {
        self.nr_regions
    }

    /// Whether region `region` is in sync (its clean bit set). A region past the end is not.
    pub fn in_sync(&self, region: u64) -> bool {
        region < self.nr_regions && self.bitmap.is_clean(region)
    }

    /// The regions out of sync (to be copied from the primary leg), as maximal half-open
    /// ranges of region numbers, ascending.
    pub fn out_of_sync(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.bitmap.dirty_ranges().into_iter()
    }
}

/// Writes, at `path`, the small log the examples read: 16 regions, regions 3, 4 and 9 out
/// of sync. Not part of the stable API.
#[doc(hidden)]
pub fn example_log(path: &Path) -> std::io::Result<()> {
    use super::format::geometry::BITMAP_START;
    use super::format::header::Header;

    let mut bits = Bitmap::filled(16, true);
    bits.set_range(3..5, false);
    bits.set(9, false);
    let mut buf = vec![0u8; 1536];
    Header::new(16).pack(&mut buf);
    bits.pack(&mut buf[BITMAP_START..]);
    std::fs::write(path, buf)
}
