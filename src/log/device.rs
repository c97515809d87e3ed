//! Opening logs and legs, aligned buffers, and the single-I/O reads and writes of the log
//! buffer.

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::pdata::io::{AlignedBuf, ByteIo, FileIo, OpenMode};

use super::error::{require_bytes, LogError};
use super::format::geometry::{check_logical_block_size, DEFAULT_LOGICAL_BLOCK_SIZE};
use super::format::header::HEADER_SIZE;

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
    require_bytes("log buffer", len, io.size_bytes())?;
    let bytes = usize::try_from(len).map_err(|_| {
        LogError::Geometry(format!(
            "a log buffer of {len} bytes does not fit in memory"
        ))
    })?;
    let mut buf = AlignedBuf::zeroed(bytes);
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

/// Replaces the log buffer whose first 16 bytes are `old_header` by `new`, of the same
/// length, so that no crash can pair a header with bits it was not written for; `rest_changes`
/// says whether any byte past the header differs. A write of several sectors may reach the
/// disk in part: a new header over the old bits would make the kernel trust bits that the
/// old header had it ignore (a log without the magic, a bad version, fewer regions). So when
/// the header changes along with other bytes, the new buffer is first written under the old
/// header and flushed, then written whole and flushed: the second write changes only the
/// header's sector, which lands whole or not at all (docs/durability.md). Otherwise one
/// write and a flush. `new` is the only buffer: its header is swapped in place.
pub fn write_update(
    io: &dyn ByteIo,
    old_header: &[u8; HEADER_SIZE],
    new: &mut AlignedBuf,
    rest_changes: bool,
) -> Result<(), LogError> {
    let mut new_header = [0u8; HEADER_SIZE];
    new_header.copy_from_slice(&new.as_slice()[..HEADER_SIZE]);
    if rest_changes && new_header != *old_header {
        new.as_mut_slice()[..HEADER_SIZE].copy_from_slice(old_header);
        let first = write_prefix(io, new);
        new.as_mut_slice()[..HEADER_SIZE].copy_from_slice(&new_header);
        first?;
    }
    write_prefix(io, new)
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

    #[test]
    fn a_new_header_goes_out_only_after_the_bits_it_covers() {
        use crate::pdata::crash_io::{CrashIo, Event};
        let buf = |header: u8, bits: u8| {
            let mut b = AlignedBuf::zeroed(1536);
            b.as_mut_slice()[..HEADER_SIZE].fill(header);
            b.as_mut_slice()[1024..].fill(bits);
            b
        };
        let writes = |old: &AlignedBuf, new: &AlignedBuf| {
            let io = CrashIo::new(old.as_slice().to_vec());
            let mut header = [0u8; HEADER_SIZE];
            header.copy_from_slice(&old.as_slice()[..HEADER_SIZE]);
            let rest = old.as_slice()[HEADER_SIZE..] != new.as_slice()[HEADER_SIZE..];
            write_update(&io, &header, &mut new.duplicate(), rest).unwrap();
            let rec = io.recording();
            assert_eq!(rec.last(), new.as_slice());
            rec.events()
                .map(|e| match e {
                    Event::Write { bytes, .. } => Some((bytes[0], bytes[1024])),
                    Event::Flush => None,
                })
                .collect::<Vec<_>>()
        };
        // Header and bits change: the bits first, under the old header, flushed.
        assert_eq!(
            writes(&buf(1, 1), &buf(2, 0)),
            [Some((1, 0)), None, Some((2, 0)), None]
        );
        // Only one of them changes: one write.
        assert_eq!(writes(&buf(1, 1), &buf(2, 1)), [Some((2, 1)), None]);
        assert_eq!(writes(&buf(1, 1), &buf(1, 0)), [Some((1, 0)), None]);
    }
}
