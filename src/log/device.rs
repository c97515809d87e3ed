//! Opening logs and legs, aligned buffers, and the single-I/O reads and writes of the log
//! buffer.

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::pdata::io::{Block, ByteIo, FileIo, OpenMode, BLOCK_SIZE};

use super::error::LogError;
use super::geometry::{check_logical_block_size, DEFAULT_LOGICAL_BLOCK_SIZE};

/// A page-aligned byte buffer, usable for `O_DIRECT` I/O of any length.
pub struct AlignedBuf {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> AlignedBuf {
        AlignedBuf {
            blocks: vec![Block([0; BLOCK_SIZE]); len.div_ceil(BLOCK_SIZE)],
            len,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `Block` is `repr(C)` with size == alignment == 4096, so a `Vec<Block>` is
        // one contiguous run of initialised bytes, and `len` never exceeds its byte length.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.len) }
    }

    /// The bytes, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; the borrow of `self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<u8>(), self.len) }
    }

    /// A copy of the bytes in a fresh aligned buffer.
    pub fn duplicate(&self) -> AlignedBuf {
        AlignedBuf {
            blocks: self.blocks.clone(),
            len: self.len,
        }
    }
}

/// Opens a log or a leg. Block devices get `O_DIRECT` and `O_EXCL` (except with
/// [`OpenMode::ReadShared`]), so a device an active mirror holds is refused with a message
/// that says so.
pub fn open(path: &Path, mode: OpenMode) -> Result<FileIo, LogError> {
    let doing = match mode {
        OpenMode::Write => "opening for writing",
        _ => "opening",
    };
    FileIo::open(path, mode).map_err(|e| LogError::io(doing, e))
}

/// The logical block size of the device at `path`: the kernel's for a block device, 512 for
/// a regular file. `forced` (from the command line) wins.
pub fn logical_block_size(path: &Path, forced: Option<u32>) -> Result<u32, LogError> {
    if let Some(lbs) = forced {
        return check_logical_block_size(lbs);
    }
    let meta = std::fs::metadata(path).map_err(|e| LogError::io("opening", e))?;
    if !meta.file_type().is_block_device() {
        return Ok(DEFAULT_LOGICAL_BLOCK_SIZE);
    }
    // A plain read-only open: it neither conflicts with nor claims an exclusive holder.
    let f = File::open(path).map_err(|e| LogError::io("opening", e))?;
    let mut size: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int into the pointed-to variable, which outlives the call.
    let r = unsafe {
        libc::ioctl(
            f.as_raw_fd(),
            libc::BLKSSZGET,
            &mut size as *mut libc::c_int,
        )
    };
    if r != 0 {
        return Err(LogError::io(
            "reading the logical block size",
            std::io::Error::last_os_error(),
        ));
    }
    check_logical_block_size(u32::try_from(size).unwrap_or(0))
}

/// Reads the first `len` bytes of the device in one I/O. `len` must not exceed the device
/// size (callers check it first, so that no length field read from disk sizes an allocation
/// beyond the device).
pub fn read_prefix(io: &dyn ByteIo, len: u64) -> Result<AlignedBuf, LogError> {
    if len > io.size_bytes() {
        return Err(LogError::Truncated {
            what: "log buffer",
            need: len,
            size: io.size_bytes(),
        });
    }
    let mut buf = AlignedBuf::zeroed(len as usize);
    io.read_at(buf.as_mut_slice(), 0)
        .map_err(|e| LogError::io(format!("reading the first {len} bytes"), e))?;
    Ok(buf)
}

/// Writes `buf` at offset 0 in one I/O and makes it durable.
pub fn write_prefix(io: &dyn ByteIo, buf: &AlignedBuf) -> Result<(), LogError> {
    io.write_at(buf.as_slice(), 0)
        .map_err(|e| LogError::io(format!("writing the first {} bytes", buf.len()), e))?;
    io.sync().map_err(|e| LogError::io("flushing the log", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffers_are_page_aligned_and_sized() {
        let mut b = AlignedBuf::zeroed(1536);
        assert_eq!(b.len(), 1536);
        assert_eq!(b.as_slice().as_ptr() as usize % BLOCK_SIZE, 0);
        b.as_mut_slice()[1535] = 7;
        assert_eq!(b.duplicate().as_slice()[1535], 7);
        assert!(AlignedBuf::zeroed(0).is_empty());
    }

    #[test]
    fn prefix_reads_are_bounded_by_the_device_size() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &[5u8; 1100]).unwrap();
        let io = FileIo::open(f.path(), OpenMode::ReadExclusive).unwrap();
        assert_eq!(read_prefix(&io, 1100).unwrap().as_slice()[1099], 5);
        assert!(matches!(
            read_prefix(&io, 1536),
            Err(LogError::Truncated {
                need: 1536,
                size: 1100,
                ..
            })
        ));
        assert_eq!(logical_block_size(f.path(), None).unwrap(), 512);
    }
}
