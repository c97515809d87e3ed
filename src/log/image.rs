//! A disk log as read from its device: header, header area and clean bitmap, checked the
//! way the kernel reads them at activation.

use crate::pdata::io::ByteIo;

use super::device::read_prefix;
use super::error::{require_bytes, LogError};
use super::format::bitmap::Bitmap;
use super::format::geometry::{
    bitmap_bytes_used, buf_size, BITMAP_OFFSET, BITMAP_START, MAX_REGIONS,
};
use super::format::header::{Header, NrRegions, Padding, HEADER_SIZE};
use super::stream::{count_bits, BitCounts, DirtyRanges};

/// How strictly to read a log.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// Logical block size of the log device (sets `buf_size`).
    pub logical_block_size: u32,
    /// Region count to read the bits for, instead of the header's `nr_regions`.
    pub nr_regions: Option<u64>,
    /// Read a device without the disk-log magic.
    pub accept_bad_magic: bool,
    /// Read a log whose version is neither 1 nor 2.
    pub accept_bad_version: bool,
}

impl ReadOptions {
    /// Strict reading with the given logical block size.
    pub fn strict(logical_block_size: u32) -> ReadOptions {
        ReadOptions {
            logical_block_size,
            nr_regions: None,
            accept_bad_magic: false,
            accept_bad_version: false,
        }
    }
}

/// A log checked the way the kernel reads it at activation: header, region count, and a
/// device that holds the whole kernel buffer. The bits stay on the device: they are read
/// in bounded pieces ([`crate::log::stream`]) or, by [`LogImage::bitmap`], whole.
pub struct LogImage {
    /// The header as stored.
    pub header: Header,
    /// The region count the bitmap is read for.
    pub nr_regions: u64,
    /// Logical block size used for `buf_size`.
    pub logical_block_size: u32,
    /// Size of the device in bytes.
    pub device_size: u64,
}

/// Reads the header alone: the device must hold 16 bytes.
pub fn read_header(io: &dyn ByteIo) -> Result<(Header, Padding), LogError> {
    let size = io.size_bytes();
    require_bytes("log header", HEADER_SIZE as u64, size)?;
    // 4096 bytes: a multiple of any logical block size, as O_DIRECT requires.
    let first = read_prefix(io, size.min(4096))?;
    Ok((
        Header::unpack(first.as_slice())?,
        Padding::of(first.as_slice()),
    ))
}

impl LogImage {
    /// Reads and checks a log: magic, version, `nr_regions`, then that the whole kernel
    /// buffer fits on the device (the bitmap first, then the rounded buffer). The bits are
    /// not read here.
    pub fn read(io: &dyn ByteIo, opts: &ReadOptions) -> Result<LogImage, LogError> {
        let (header, _) = read_header(io)?;
        if !opts.accept_bad_magic {
            header.check_magic()?;
        }
        if !opts.accept_bad_version {
            header.check_version()?;
        }
        let nr_regions = match opts.nr_regions {
            Some(n) if n > MAX_REGIONS => {
                return Err(LogError::Geometry(format!(
                    "region count {n} is above the kernel's limit of 2^32 - 1"
                )))
            }
            Some(n) => n,
            None => match header.regions() {
                NrRegions::Count(n) => n,
                NrRegions::LvmInitialised => return Err(LogError::UnknownNrRegions),
                NrRegions::Invalid(n) => return Err(LogError::BadNrRegions { found: n }),
            },
        };
        let size = io.size_bytes();
        let bits_end = BITMAP_OFFSET + bitmap_bytes_used(nr_regions);
        require_bytes("clean bitmap", bits_end, size)?;
        let len = buf_size(nr_regions, opts.logical_block_size);
        require_bytes(
            "log buffer (the kernel's buf_size; table load would fail)",
            len,
            size,
        )?;
        Ok(LogImage {
            header,
            nr_regions,
            logical_block_size: opts.logical_block_size,
            device_size: size,
        })
    }

    /// `buf_size` for this log.
    pub fn buf_size(&self) -> u64 {
        buf_size(self.nr_regions, self.logical_block_size)
    }

    /// Counts the clean regions, the stray bits and the stale bytes, reading the buffer in
    /// pieces.
    pub fn count_bits(&self, io: &dyn ByteIo) -> Result<BitCounts, LogError> {
        count_bits(io, self.nr_regions, self.buf_size())
    }

    /// The dirty ranges, read from `io` in pieces.
    pub fn dirty_ranges<'a>(&self, io: &'a dyn ByteIo) -> DirtyRanges<'a> {
        DirtyRanges::new(io, self.nr_regions, self.buf_size())
    }

    /// The whole bitmap, read at once (for random access to the bits).
    pub fn bitmap(&self, io: &dyn ByteIo) -> Result<Bitmap, LogError> {
        let buf = read_prefix(io, self.buf_size())?;
        Bitmap::unpack(self.nr_regions, &buf.as_slice()[BITMAP_START..])
    }
}
