//! Block I/O: whole 4096-byte metadata blocks on a file, a block device or memory.
//!
//! Every reader and writer in the crate goes through [`BlockIo`], so tests can swap the
//! device for memory (and, later, for a fault-injecting backend).

use super::error::ReadError;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Size of every metadata block, in bytes.
pub const BLOCK_SIZE: usize = 4096;

/// One metadata block. Page-aligned so that it can be handed to `O_DIRECT` I/O as it is.
#[repr(C, align(4096))]
#[derive(Clone)]
pub struct Block(pub [u8; BLOCK_SIZE]);

impl Block {
    /// A zero-filled block on the heap.
    pub fn zeroed() -> Box<Block> {
        Box::new(Block([0; BLOCK_SIZE]))
    }
}

impl Deref for Block {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for Block {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

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

/// Whether two paths reach the same data: the same file, the same block device through two
/// device nodes, or a loop device and the file behind it (or two loop devices over one
/// file). Tools compare their output with their input with it, so that a typo cannot make
/// them overwrite what they read.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let (x, y) = (reaches(a), reaches(b));
    x.iter().any(|i| y.contains(i))
}

/// What a path's data lives in: a regular file's filesystem and inode; a block device's
/// number and, for a loop device, the file behind it.
#[derive(PartialEq, Eq)]
enum Reach {
    File { dev: u64, ino: u64 },
    Block(u64),
}

fn reaches(path: &Path) -> Vec<Reach> {
    let Ok(m) = std::fs::metadata(path) else {
        return Vec::new();
    };
    if !m.file_type().is_block_device() {
        return vec![Reach::File {
            dev: m.dev(),
            ino: m.ino(),
        }];
    }
    let mut v = vec![Reach::Block(m.rdev())];
    // Only a loop device is asked for a file behind it: opening other devices (an optical
    // drive, a replicated device's secondary) may be slow or do more than open.
    if libc::major(m.rdev()) != LOOP_MAJOR {
        return v;
    }
    if let Some((dev, ino)) = loop_backing(path) {
        v.push(Reach::File { dev, ino });
    }
    v
}

/// The major number of loop devices (Documentation/admin-guide/devices.txt).
const LOOP_MAJOR: u32 = 7;

/// The filesystem and inode of the file behind loop device `path` (LOOP_GET_STATUS64), or
/// `None` for any other device, or one that cannot be asked.
fn loop_backing(path: &Path) -> Option<(u64, u64)> {
    /// LOOP_GET_STATUS64 of linux/loop.h.
    const LOOP_GET_STATUS64: libc::c_ulong = 0x4C05;
    let f = std::fs::File::open(path).ok()?;
    // struct loop_info64 is 232 bytes; lo_device and lo_inode are its first two u64s.
    let mut info = [0u64; 29];
    // SAFETY: the buffer is as large as struct loop_info64 and aligned for its u64 fields;
    // the kernel writes at most that much, and only on success.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), LOOP_GET_STATUS64, info.as_mut_ptr()) };
    // lo_device is the kernel's encoding of a dev_t, which is glibc's for every major below
    // 4096 (all the kernel hands out).
    (r == 0).then_some((info[0], info[1]))
}

/// A device made of 4096-byte blocks.
pub trait BlockIo: Send + Sync {
    /// Whole blocks on the device; a partial trailing block is never used.
    fn nr_blocks(&self) -> u64;
    /// Reads block `loc` into `buf`.
    fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()>;
    /// Writes `buf` to block `loc`.
    fn write(&self, loc: u64, buf: &Block) -> io::Result<()>;
    /// Makes every completed write durable.
    fn flush(&self) -> io::Result<()>;

    /// Reads block `loc` into a fresh buffer.
    fn read_new(&self, loc: u64) -> io::Result<Box<Block>> {
        let mut b = Block::zeroed();
        self.read(loc, &mut b)?;
        Ok(b)
    }

    /// Reads the consecutive blocks from `first` into `bufs`. A device that can read a run
    /// in one request does so; the others read block by block.
    fn read_run(&self, first: u64, bufs: &mut [Box<Block>]) -> io::Result<()> {
        for (loc, b) in (first..).zip(bufs.iter_mut()) {
            self.read(loc, b)?;
        }
        Ok(())
    }

    /// Whether reading is faster with several reads in flight: a block device read with
    /// `O_DIRECT`, where every read goes to the device. Through the page cache one reader
    /// is faster than several contending ones.
    fn concurrent_reads(&self) -> bool {
        false
    }
}

fn beyond_end(loc: u64, nr_blocks: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("block {loc} is beyond the end of the device ({nr_blocks} blocks)"),
    )
}

/// A device addressed in bytes, for formats that are not made of 4096-byte blocks. With `O_DIRECT`, buffers, offsets and lengths must be aligned to
/// the device's logical block size.
pub trait ByteIo: Send + Sync {
    /// Size in bytes.
    fn size_bytes(&self) -> u64;
    /// Reads `buf.len()` bytes at byte `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes `buf` at byte `offset`.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every completed write durable.
    fn sync(&self) -> io::Result<()>;
}

/// How a [`FileIo`] opens its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only. A block device is opened with `O_EXCL`, so a device that a live target
    /// holds is refused instead of read while it changes.
    ReadExclusive,
    /// Read only, without `O_EXCL`: for the held metadata snapshot of a live target, which
    /// the kernel keeps open.
    ReadShared,
    /// Read and write; a block device is opened with `O_EXCL`.
    Write,
}

/// What a regular file another run of the suite has locked is said to be.
pub const LOCKED: &str =
    "in use: another run of these tools is reading or writing it; wait for it to end";

/// The regular file's counterpart of `O_EXCL` on a block device: a writer locks its file
/// exclusively and a reader shares its lock, so that two writers (or a writer and a reader)
/// never work on one file at once, each believing it alone. The lock is the kernel's
/// (`flock`) and goes with the process. A file locked by another run is refused with
/// [`LOCKED`]; a filesystem that has no locks is used without one.
fn lock(file: &File, mode: OpenMode) -> io::Result<()> {
    let how = match mode {
        OpenMode::Write => libc::LOCK_EX,
        OpenMode::ReadExclusive => libc::LOCK_SH,
        OpenMode::ReadShared => return Ok(()),
    };
    // SAFETY: flock only takes a lock on the descriptor, which `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), how | libc::LOCK_NB) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Err(io::Error::new(io::ErrorKind::WouldBlock, LOCKED)),
        _ => Ok(()),
    }
}

/// Most buffers one `preadv` takes (well below every system's `IOV_MAX`).
const MAX_RUN_BUFS: usize = 256;

/// A regular file or a block device. Block devices are opened with `O_DIRECT`, because the
/// kernel writes metadata around the page cache and a buffered reader could see stale blocks.
pub struct FileIo {
    file: File,
    path: PathBuf,
    nr_blocks: u64,
    size_bytes: u64,
    is_block_device: bool,
}

impl FileIo {
    /// Opens `path`. Errors keep the OS error kind: `NotFound`, and `ResourceBusy` (EBUSY)
    /// for a block device that someone else holds open exclusively.
    pub fn open(path: &Path, mode: OpenMode) -> io::Result<FileIo> {
        let meta = std::fs::metadata(path)?;
        let ft = meta.file_type();
        let is_block_device = ft.is_block_device();
        if !is_block_device && !ft.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a block device or regular file",
            ));
        }
        let mut opts = OpenOptions::new();
        opts.read(true);
        if mode == OpenMode::Write {
            opts.write(true);
        }
        if is_block_device {
            let mut flags = libc::O_DIRECT;
            if mode != OpenMode::ReadShared {
                flags |= libc::O_EXCL;
            }
            opts.custom_flags(flags);
        }
        let mut file = opts.open(path)?;
        if !is_block_device {
            lock(&file, mode)?;
        }
        let size_bytes = if is_block_device {
            file.seek(SeekFrom::End(0))?
        } else {
            meta.len()
        };
        Ok(FileIo {
            file,
            path: path.to_path_buf(),
            nr_blocks: size_bytes / BLOCK_SIZE as u64,
            size_bytes,
            is_block_device,
        })
    }

    /// [`FileIo::open`] for a reader, its failure told with the path.
    pub fn open_to_read(path: &Path, mode: OpenMode) -> Result<FileIo, ReadError> {
        FileIo::open(path, mode).map_err(|source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The path the device was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path is a block device (opened with `O_DIRECT`).
    pub fn is_block_device(&self) -> bool {
        self.is_block_device
    }
}

impl ByteIo for FileIo {
    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }
}

impl BlockIo for FileIo {
    fn nr_blocks(&self) -> u64 {
        self.nr_blocks
    }

    fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()> {
        if loc >= self.nr_blocks {
            return Err(beyond_end(loc, self.nr_blocks));
        }
        self.file.read_exact_at(&mut buf.0, loc * BLOCK_SIZE as u64)
    }

    fn write(&self, loc: u64, buf: &Block) -> io::Result<()> {
        if loc >= self.nr_blocks {
            return Err(beyond_end(loc, self.nr_blocks));
        }
        self.file.write_all_at(&buf.0, loc * BLOCK_SIZE as u64)
    }

    fn read_run(&self, first: u64, bufs: &mut [Box<Block>]) -> io::Result<()> {
        let end = first.saturating_add(bufs.len() as u64);
        if bufs.len() < 2 || end > self.nr_blocks || bufs.len() > MAX_RUN_BUFS {
            for (loc, b) in (first..).zip(bufs.iter_mut()) {
                self.read(loc, b)?;
            }
            return Ok(());
        }
        let iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.0.as_mut_ptr().cast(),
                iov_len: BLOCK_SIZE,
            })
            .collect();
        let want = bufs.len() * BLOCK_SIZE;
        // Below the device's size, which a file offset holds.
        let offset = libc::off_t::try_from(first * BLOCK_SIZE as u64)
            .map_err(|_| beyond_end(first, self.nr_blocks))?;
        // At most MAX_RUN_BUFS: never fails.
        let iovcnt = libc::c_int::try_from(iov.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: every iovec points at a distinct, live, page-aligned block of BLOCK_SIZE
        // bytes borrowed mutably from `bufs` for the duration of the call.
        let got = unsafe { libc::preadv(self.file.as_raw_fd(), iov.as_ptr(), iovcnt, offset) };
        let Ok(got) = usize::try_from(got) else {
            return Err(io::Error::last_os_error());
        };
        // A short read (a signal, a device that splits requests): the rest block by block.
        let done = got / BLOCK_SIZE;
        if got != want {
            for (loc, b) in (first + done as u64..).zip(bufs[done..].iter_mut()) {
                self.read(loc, b)?;
            }
        }
        Ok(())
    }

    fn concurrent_reads(&self) -> bool {
        self.is_block_device
    }

    fn flush(&self) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// A device in memory, for tests and for building images before they are written.
pub struct MemIo {
    data: Mutex<Vec<u8>>,
    nr_blocks: u64,
}

impl MemIo {
    /// A zero-filled device of `nr_blocks` blocks.
    pub fn new(nr_blocks: u64) -> MemIo {
        MemIo::from_bytes(vec![0; crate::cast::index(nr_blocks) * BLOCK_SIZE])
    }

    /// A device holding `bytes`; a partial trailing block is kept but never addressed.
    pub fn from_bytes(bytes: Vec<u8>) -> MemIo {
        let nr_blocks = (bytes.len() / BLOCK_SIZE) as u64;
        MemIo {
            data: Mutex::new(bytes),
            nr_blocks,
        }
    }

    /// The device's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn range(&self, loc: u64) -> io::Result<std::ops::Range<usize>> {
        if loc >= self.nr_blocks {
            return Err(beyond_end(loc, self.nr_blocks));
        }
        // Below `nr_blocks`, which counts the blocks in memory.
        let start = crate::cast::index(loc) * BLOCK_SIZE;
        Ok(start..start + BLOCK_SIZE)
    }
}

impl ByteIo for MemIo {
    fn size_bytes(&self) -> u64 {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).len() as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let r = byte_range(offset, buf.len(), data.len())?;
        buf.copy_from_slice(&data[r]);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let r = byte_range(offset, buf.len(), data.len())?;
        data[r].copy_from_slice(buf);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

fn byte_range(offset: u64, len: usize, size: usize) -> io::Result<std::ops::Range<usize>> {
    usize::try_from(offset)
        .ok()
        .and_then(|o| Some(o..o.checked_add(len)?))
        .filter(|r| r.end <= size)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{len} bytes at offset {offset} run past the end ({size} bytes)"),
            )
        })
}

impl BlockIo for MemIo {
    fn nr_blocks(&self) -> u64 {
        self.nr_blocks
    }

    fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()> {
        let r = self.range(loc)?;
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        buf.0.copy_from_slice(&data[r]);
        Ok(())
    }

    fn write(&self, loc: u64, buf: &Block) -> io::Result<()> {
        let r = self.range(loc)?;
        let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        data[r].copy_from_slice(&buf.0);
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_what_its_blocks_read_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        // 5 blocks and a partial one, each block filled with its number.
        let mut bytes: Vec<u8> = (0..5u8).flat_map(|i| [i + 1; BLOCK_SIZE]).collect();
        bytes.extend_from_slice(&[9; 100]);
        std::fs::write(&path, &bytes).unwrap();
        let io = FileIo::open(&path, OpenMode::ReadShared).unwrap();
        assert!(
            !io.concurrent_reads(),
            "a regular file is read through the page cache"
        );
        let mut bufs: Vec<Box<Block>> = (0..4).map(|_| Block::zeroed()).collect();
        io.read_run(1, &mut bufs).unwrap();
        for (i, b) in bufs.iter().enumerate() {
            assert!(b.0.iter().all(|&x| x == i as u8 + 2), "block {}", i + 1);
        }
        // Past the last whole block: the error a single read gives.
        let mut bufs: Vec<Box<Block>> = (0..3).map(|_| Block::zeroed()).collect();
        let e = io.read_run(3, &mut bufs).unwrap_err();
        assert!(e.to_string().contains("block 5 is beyond the end"), "{e}");
    }

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
    fn mem_io_reads_back_what_was_written_and_bounds_block_numbers() {
        let io = MemIo::new(3);
        let mut b = Block::zeroed();
        b[0] = 7;
        b[4095] = 9;
        io.write(2, &b).unwrap();
        let r = io.read_new(2).unwrap();
        assert_eq!((r[0], r[4095]), (7, 9));
        assert_eq!(io.read_new(0).unwrap()[0], 0);
        let err = io.read_new(3).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(io.write(3, &b).is_err());
    }

    #[test]
    fn file_io_ignores_a_partial_trailing_block() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &vec![1u8; BLOCK_SIZE * 2 + 100]).unwrap();
        let io = FileIo::open(f.path(), OpenMode::ReadExclusive).unwrap();
        assert_eq!(io.nr_blocks(), 2);
        assert_eq!(ByteIo::size_bytes(&io), BLOCK_SIZE as u64 * 2 + 100);
        assert!(io.read_new(2).is_err());
        assert_eq!(io.read_new(1).unwrap()[4095], 1);
    }

    #[test]
    fn mem_io_bytes_are_bounded() {
        let io = MemIo::from_bytes(vec![0; 100]);
        io.write_at(&[1, 2], 98).unwrap();
        let mut b = [0u8; 2];
        io.read_at(&mut b, 98).unwrap();
        assert_eq!(b, [1, 2]);
        assert!(io.write_at(&[1, 2], 99).is_err());
        assert!(io.read_at(&mut b, u64::MAX).is_err());
    }

    #[test]
    fn file_io_refuses_a_directory() {
        let d = tempfile::tempdir().unwrap();
        let err = FileIo::open(d.path(), OpenMode::ReadExclusive)
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
