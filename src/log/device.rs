//! Opening logs and legs, aligned buffers, and the single-I/O reads and writes of the log
//! buffer.

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::pdata::io::{AlignedBuf, ByteIo, FileIo, OpenMode};

use super::error::LogError;
use super::geometry::{check_logical_block_size, DEFAULT_LOGICAL_BLOCK_SIZE};

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
