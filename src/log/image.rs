//! A disk log as read from its device: header, header area and clean bitmap, checked the
//! way the kernel reads them at activation.

use crate::pdata::io::ByteIo;

use super::device::read_prefix;
use super::error::{require_bytes, LogError};
use super::format::bitmap::Bitmap;
use super::format::geometry::{
    bitmap_bytes_used, bitset_bytes, buf_size, BITMAP_OFFSET, BITMAP_START, MAX_REGIONS,
};
use super::format::header::{Header, NrRegions, Padding, HEADER_SIZE};
use crate::pdata::io::AlignedBuf;

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

/// The first `buf_size` bytes of a log device, decoded.
pub struct LogImage {
    /// The header as stored.
    pub header: Header,
    /// The region count the bitmap was read for.
    pub nr_regions: u64,
    /// The clean bits.
    pub bitmap: Bitmap,
    /// Logical block size used for `buf_size`.
    pub logical_block_size: u32,
    /// Size of the device in bytes.
    pub device_size: u64,
    buf: AlignedBuf,
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
    /// Reads and checks a log: magic, version, `nr_regions`, then the whole kernel buffer,
    /// which must fit on the device (the bitmap first, then the rounded buffer).
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
        let buf = read_prefix(io, len)?;
        let bitmap = Bitmap::unpack(nr_regions, &buf.as_slice()[BITMAP_START..])?;
        Ok(LogImage {
            header,
            nr_regions,
            bitmap,
            logical_block_size: opts.logical_block_size,
            device_size: size,
            buf,
        })
    }

    /// The bytes read: the kernel's whole buffer.
    pub fn bytes(&self) -> &AlignedBuf {
        &self.buf
    }

    /// What bytes 16..1023 hold.
    pub fn padding(&self) -> Padding {
        Padding::of(self.buf.as_slice())
    }

    /// `buf_size` for this log.
    pub fn buf_size(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Non-zero bytes after the bitmap's 64-bit words and before `buf_size`: bits of a
    /// larger, earlier mirror that the kernel kept when the mirror shrank.
    pub fn stale_bytes_after_bitmap(&self) -> u64 {
        let from = crate::cast::index(BITMAP_OFFSET + bitset_bytes(self.nr_regions));
        self.buf
            .as_slice()
            .get(from..)
            .unwrap_or(&[])
            .iter()
            .filter(|&&b| b != 0)
            .count() as u64
    }

    /// The buffer this log would have with `header` and `bitmap` written into it, everything
    /// else (header padding, bytes after the bitmap) preserved. `len` is the new `buf_size`;
    /// bytes beyond what was read come from `io`.
    pub fn render(
        &self,
        io: &dyn ByteIo,
        header: &Header,
        bitmap: &Bitmap,
        len: u64,
    ) -> Result<(AlignedBuf, AlignedBuf), LogError> {
        let old = if len == self.buf_size() {
            self.buf.duplicate()
        } else {
            read_prefix(io, len)?
        };
        let new = compose(&old, header, bitmap);
        Ok((old, new))
    }
}

/// `base` with `header` and `bitmap` written into it.
pub fn compose(base: &AlignedBuf, header: &Header, bitmap: &Bitmap) -> AlignedBuf {
    let mut new = base.duplicate();
    let bytes = new.as_mut_slice();
    header.pack(bytes);
    bitmap.pack(&mut bytes[BITMAP_START..]);
    new
}
