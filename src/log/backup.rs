//! The backup file of `log_repair --backup` and `--undo` (docs/dirty-log-format.md §9.6):
//! which log and legs it was taken from, then every byte range the run was about to
//! overwrite, each record checksummed, so that an undo can check the backup and the devices
//! before it puts a single byte back.
//!
//! All integers are little-endian. A header, then records, then an end record:
//!
//! ```text
//! header   magic "DMLOGBK\0", version u32 (2), nr_legs u32, header_len u32, reserved u32,
//!          then the log and each leg: size u64, dev u64, ino u64, rdev u64,
//!          offset u64 (sectors; 0 for the log), path_len u32, path (absolute; version 1
//!          recorded it as given, which may be relative to a directory it does not record),
//!          then crc32c u32 of the header's bytes before it
//! record   kind u32 (1 log, 2 leg, 3 end), leg u32, offset u64 (bytes, on the device),
//!          length u64, new_crc u32 (crc32c of what the run writes there),
//!          crc u32 (crc32c of the 28 bytes before it and of the data), data
//! end      kind 3, leg 0, offset = number of records before it, length 0, new_crc 0, crc
//! ```

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use byteorder::{ByteOrder, LittleEndian as LE, WriteBytesExt};

use super::error::LogError;
use super::resync::CHUNK;
use crate::pdata::io::AlignedBuf;

/// The first 8 bytes of a backup.
pub const MAGIC: [u8; 8] = *b"DMLOGBK\0";

/// The format version this code writes: paths are absolute.
pub const VERSION: u32 = 2;

/// The earlier version, still read: the same layout, paths as given on the command line.
pub const VERSION_RELATIVE: u32 = 1;

/// Bytes of a record's fixed part.
pub const RECORD_HEADER: u64 = 32;

/// Most legs a backup may describe (the kernel's mirror takes at most 9 legs).
const MAX_LEGS: u32 = 32;

/// Longest path a backup may record.
const MAX_PATH: u32 = 4096;

const KIND_LOG: u32 = 1;
const KIND_LEG: u32 = 2;
const KIND_END: u32 = 3;

/// Which device a backup was taken from: its path, size, and numbers that tell one file or
/// device from another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceId {
    /// The path: absolute in a backup this code writes ([`DeviceId::recorded`]); as given
    /// on the command line otherwise, and in a version-1 backup.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// `st_dev`: the filesystem of a regular file.
    pub dev: u64,
    /// `st_ino`: the inode of a regular file.
    pub ino: u64,
    /// `st_rdev`: the device number of a block device (0 for a regular file).
    pub rdev: u64,
}

impl DeviceId {
    /// The identity of the file or device at `path`, whose size (as opened) is `size`.
    /// Numbers that cannot be read are 0, which matches only 0.
    pub fn of(path: &Path, size: u64) -> DeviceId {
        let meta = std::fs::metadata(path).ok();
        let block = meta
            .as_ref()
            .is_some_and(|m| m.file_type().is_block_device());
        DeviceId {
            path: path.display().to_string(),
            size,
            dev: meta.as_ref().map_or(0, |m| m.dev()),
            ino: meta.as_ref().map_or(0, |m| m.ino()),
            rdev: if block {
                meta.as_ref().map_or(0, |m| m.rdev())
            } else {
                0
            },
        }
    }

    /// The identity of `path` as a backup records it: with its absolute path ([`absolute`]),
    /// so that an undo run from another directory finds the same file.
    pub fn recorded(path: &Path, size: u64) -> DeviceId {
        DeviceId::of(&absolute(path), size)
    }

    /// Whether `self` (found now) is the device `recorded` describes: a block device by its
    /// device number, a regular file by its filesystem and inode. Sizes are compared apart.
    pub fn same_as(&self, recorded: &DeviceId) -> bool {
        if self.rdev != 0 || recorded.rdev != 0 {
            self.rdev == recorded.rdev
        } else {
            (self.dev, self.ino) == (recorded.dev, recorded.ino)
        }
    }
}

/// `path` made absolute: its directory resolved, its last component kept as named. A
/// device's symbolic link (`/dev/vg/lv`) follows the device across reboots, while the node
/// it points to (`/dev/dm-3`) may be another device then, with the same numbers.
pub fn absolute(path: &Path) -> std::path::PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// A leg as the backup records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegId {
    /// The device.
    pub id: DeviceId,
    /// Start of the mirror on the leg, in sectors.
    pub offset: u64,
}

/// What a backup was taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupHeader {
    /// The log.
    pub log: DeviceId,
    /// The legs in table order (none for the modes without legs).
    pub legs: Vec<LegId>,
}

/// Where a record's bytes go back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The log.
    Log,
    /// Leg `n` (table order).
    Leg(usize),
}

/// Where a record's bytes go, as its head says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHead {
    /// Device the bytes belong to.
    pub target: Target,
    /// Byte offset on that device.
    pub offset: u64,
    /// crc32c of the bytes the run writes there.
    pub new_crc: u32,
    /// Number of bytes.
    pub len: usize,
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    let at = out.len();
    out.resize(at + 4, 0);
    LE::write_u32(&mut out[at..], v);
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    let at = out.len();
    out.resize(at + 8, 0);
    LE::write_u64(&mut out[at..], v);
}

fn put_id(out: &mut Vec<u8>, id: &DeviceId, offset: u64) {
    for v in [id.size, id.dev, id.ino, id.rdev, offset] {
        put_u64(out, v);
    }
    let path = id.path.as_bytes();
    let len = path.len().min(MAX_PATH as usize);
    put_u32(out, crate::cast::saturating_u32(len));
    out.extend_from_slice(&path[..len]);
}

impl BackupHeader {
    /// The header's bytes, checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        put_u32(&mut out, VERSION);
        put_u32(&mut out, crate::cast::saturating_u32(self.legs.len()));
        out.extend_from_slice(&[0; 8]);
        put_id(&mut out, &self.log, 0);
        for leg in &self.legs {
            put_id(&mut out, &leg.id, leg.offset);
        }
        let len = crate::cast::saturating_u32(out.len() + 4);
        LE::write_u32(&mut out[16..20], len);
        let crc = crc32c::crc32c(&out);
        put_u32(&mut out, crc);
        out
    }

    /// Reads and checks a header. No length read from the file sizes an allocation beyond
    /// the bounds of the format.
    pub fn read(r: &mut dyn Read) -> Result<BackupHeader, LogError> {
        let mut fixed = [0u8; 24];
        read_exact(r, &mut fixed, "header")?;
        if fixed[0..8] != MAGIC {
            return Err(bad("header: not a backup of log_repair (bad magic)"));
        }
        let version = le32(&fixed, 8);
        if version != VERSION && version != VERSION_RELATIVE {
            return Err(bad(format!(
                "header: version {version} (this tool reads {VERSION_RELATIVE} and {VERSION})"
            )));
        }
        let nr_legs = le32(&fixed, 12);
        let len = le32(&fixed, 16);
        let most = 24 + (MAX_LEGS + 1) * (44 + MAX_PATH) + 4;
        if nr_legs > MAX_LEGS || len < 24 + 44 + 4 || len > most {
            return Err(bad(format!(
                "header: {nr_legs} legs in {len} bytes is not a valid header"
            )));
        }
        let mut bytes = fixed.to_vec();
        bytes.resize(len as usize, 0);
        read_exact(r, &mut bytes[24..], "header")?;
        let body = len as usize - 4;
        if crc32c::crc32c(&bytes[..body]) != le32(&bytes, body) {
            return Err(bad("header: bad checksum"));
        }
        let mut at = 24;
        let (log, _) = take_id(&bytes[..body], &mut at)?;
        let mut legs = Vec::new();
        for _ in 0..nr_legs {
            let (id, offset) = take_id(&bytes[..body], &mut at)?;
            legs.push(LegId { id, offset });
        }
        if at != body {
            return Err(bad("header: length does not match its entries"));
        }
        Ok(BackupHeader { log, legs })
    }
}

fn take_id(b: &[u8], at: &mut usize) -> Result<(DeviceId, u64), LogError> {
    let short = || bad("header: an entry runs past its end");
    let fixed = b.get(*at..*at + 44).ok_or_else(short)?;
    let n = |i: usize| le64(fixed, i * 8);
    let path_len = le32(fixed, 40) as usize;
    let path = b
        .get(*at + 44..*at + 44 + path_len)
        .ok_or_else(short)?
        .to_vec();
    *at += 44 + path_len;
    let path = String::from_utf8(path).map_err(|_| bad("header: a path is not UTF-8"))?;
    Ok((
        DeviceId {
            path,
            size: n(0),
            dev: n(1),
            ino: n(2),
            rdev: n(3),
        },
        n(4),
    ))
}

fn le32(b: &[u8], at: usize) -> u32 {
    LE::read_u32(&b[at..at + 4])
}

fn le64(b: &[u8], at: usize) -> u64 {
    LE::read_u64(&b[at..at + 8])
}

fn bad(what: impl Into<String>) -> LogError {
    LogError::Invalid(what.into())
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], what: &str) -> Result<(), LogError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => bad(format!("{what}: the file ends inside it")),
        _ => LogError::io(format!("reading the backup's {what}"), e),
    })
}

fn record_head(kind: u32, leg: u32, offset: u64, length: u64, new_crc: u32) -> [u8; 28] {
    let mut h = [0u8; 28];
    LE::write_u32(&mut h[0..4], kind);
    LE::write_u32(&mut h[4..8], leg);
    LE::write_u64(&mut h[8..16], offset);
    LE::write_u64(&mut h[16..24], length);
    LE::write_u32(&mut h[24..28], new_crc);
    h
}

/// Writes a backup: the header, then records as they are handed in, then the end record.
pub struct BackupWriter<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> BackupWriter<W> {
    /// Starts a backup on `out` with `header`.
    pub fn new(mut out: W, header: &BackupHeader) -> std::io::Result<BackupWriter<W>> {
        out.write_all(&header.encode())?;
        Ok(BackupWriter { out, records: 0 })
    }

    /// Adds the bytes `old` found at `offset` on `target`, which the run overwrites with
    /// bytes whose crc32c is `new_crc`.
    pub fn record(
        &mut self,
        target: Target,
        offset: u64,
        old: &[u8],
        new_crc: u32,
    ) -> std::io::Result<()> {
        let len = old.len() as u64;
        self.begin_record(target, offset, len, crc32c::crc32c(old), new_crc)?;
        self.data(old)
    }

    /// Starts the record of the `len` bytes found at `offset` on `target`, whose crc32c is
    /// `old_crc`, which the run overwrites with bytes whose crc32c is `new_crc`. The caller
    /// then hands in those bytes with [`BackupWriter::data`], all of them, in order: a
    /// record of a log buffer too large to hold twice.
    pub fn begin_record(
        &mut self,
        target: Target,
        offset: u64,
        len: u64,
        old_crc: u32,
        new_crc: u32,
    ) -> std::io::Result<()> {
        let (kind, leg) = match target {
            Target::Log => (KIND_LOG, 0),
            Target::Leg(i) => (KIND_LEG, crate::cast::saturating_u32(i)),
        };
        let head = record_head(kind, leg, offset, len, new_crc);
        let crc = crc32c::crc32c_combine(crc32c::crc32c(&head), old_crc, crate::cast::index(len));
        self.out.write_all(&head)?;
        self.out.write_u32::<LE>(crc)?;
        self.records += 1;
        Ok(())
    }

    /// The next bytes of the record begun last.
    pub fn data(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)
    }

    /// Writes the end record and hands the writer back (to be synced).
    pub fn finish(mut self) -> std::io::Result<W> {
        let head = record_head(KIND_END, 0, self.records, 0, 0);
        self.out.write_all(&head)?;
        self.out.write_u32::<LE>(crc32c::crc32c(&head))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads the records of a backup after its header, checking each one's checksum and bounds
/// before anything is allocated for it: a record must fit the device it belongs to (whose
/// size the caller checks against the real device), and a leg's record is at most one
/// piece of a resync ([`CHUNK`]).
pub struct BackupReader<'a> {
    input: &'a mut dyn Read,
    header: &'a BackupHeader,
    records: u64,
    ended: bool,
}

impl<'a> BackupReader<'a> {
    /// Reads the records that follow `header` on `input`.
    pub fn new(input: &'a mut dyn Read, header: &'a BackupHeader) -> BackupReader<'a> {
        BackupReader {
            input,
            header,
            records: 0,
            ended: false,
        }
    }

    /// The next record, or `None` after the end record: its head, and its bytes read into
    /// the buffer `buffer` makes for the head (of the head's length; the bytes go straight
    /// into the buffer a writer writes, with no copy of them). The head is checked against
    /// the devices' sizes before `buffer` is asked for one, and the record's checksum after
    /// the bytes are read: nothing may be done with the buffer's content before this returns.
    pub fn next_record(
        &mut self,
        buffer: &mut dyn FnMut(&RecordHead) -> Result<AlignedBuf, LogError>,
    ) -> Result<Option<(RecordHead, AlignedBuf)>, LogError> {
        let Some((h, head)) = self.next_head()? else {
            return Ok(None);
        };
        let mut data = buffer(&h)?;
        if data.len() != h.len {
            return Err(LogError::Invalid(format!(
                "a buffer of {} bytes for a record of {}",
                data.len(),
                h.len
            )));
        }
        let n = self.records;
        read_exact(self.input, data.as_mut_slice(), &format!("record {n}"))?;
        self.check(&head, crc32c::crc32c(data.as_slice()), h.len)?;
        Ok(Some((h, data)))
    }

    /// The next record's head, its bytes handed to `f` a piece of at most `piece` bytes at
    /// a time with their offset in the record; `None` after the end record. `f` sees the
    /// bytes before the record's checksum is checked: nothing may be done with them but
    /// looking until this returns the head.
    pub fn next_in_pieces(
        &mut self,
        piece: usize,
        f: &mut dyn FnMut(&RecordHead, u64, &[u8]),
    ) -> Result<Option<RecordHead>, LogError> {
        let Some((h, head)) = self.next_head()? else {
            return Ok(None);
        };
        let n = self.records;
        let mut buf = vec![0u8; h.len.min(piece.max(1))];
        let (mut off, mut crc) = (0, 0);
        while off < h.len {
            let bytes = &mut buf[..(h.len - off).min(piece.max(1))];
            read_exact(self.input, bytes, &format!("record {n}"))?;
            crc = crc32c::crc32c_append(crc, bytes);
            f(&h, off as u64, bytes);
            off += bytes.len();
        }
        self.check(&head, crc, h.len)?;
        Ok(Some(h))
    }

    /// Checks the record whose head is `head` and whose bytes' crc32c is `data_crc`, and
    /// counts it.
    fn check(&mut self, head: &[u8; 32], data_crc: u32, len: usize) -> Result<(), LogError> {
        let whole = crc32c::crc32c_combine(crc32c::crc32c(&head[..28]), data_crc, len);
        if whole != le32(head, 28) {
            return Err(bad(format!("record {}: bad checksum", self.records)));
        }
        self.records += 1;
        Ok(())
    }

    /// The next record's head, checked against the devices' sizes (its checksum comes with
    /// its bytes), or `None` after the end record.
    fn next_head(&mut self) -> Result<Option<(RecordHead, [u8; 32])>, LogError> {
        if self.ended {
            return Ok(None);
        }
        let n = self.records;
        let mut head = [0u8; 32];
        read_exact(self.input, &mut head, &format!("record {n}"))?;
        let (kind, leg) = (le32(&head, 0), le32(&head, 4));
        let (offset, length, new_crc) = (le64(&head, 8), le64(&head, 16), le32(&head, 24));
        let wrong = |what: &str| bad(format!("record {n}: {what}"));
        if kind == KIND_END {
            if crc32c::crc32c(&head[..28]) != le32(&head, 28) {
                return Err(wrong("bad checksum"));
            }
            if offset != n || length != 0 {
                return Err(wrong("the end record does not count the records before it"));
            }
            self.ended = true;
            return Ok(None);
        }
        let (target, size, most) =
            match kind {
                KIND_LOG => (Target::Log, self.header.log.size, self.header.log.size),
                KIND_LEG => {
                    let i = leg as usize;
                    let l =
                        self.header.legs.get(i).filter(|_| i > 0).ok_or_else(|| {
                            wrong(&format!("leg {leg} is not a leg the run wrote"))
                        })?;
                    (Target::Leg(i), l.id.size, CHUNK)
                }
                _ => return Err(wrong(&format!("unknown kind {kind}"))),
            };
        let fits = offset.checked_add(length).is_some_and(|end| end <= size);
        if length > most || !fits {
            return Err(wrong(&format!(
                "{length} bytes at offset {offset} do not fit the device ({size} bytes)"
            )));
        }
        let len = usize::try_from(length)
            .map_err(|_| wrong(&format!("{length} bytes do not fit in memory")))?;
        let h = RecordHead {
            target,
            offset,
            new_crc,
            len,
        };
        Ok(Some((h, head)))
    }
}

/// Makes the backup file at `path` and its name durable: the file's data, then its
/// directory ("." when the path has no parent component).
pub fn sync_file_and_dir(file: &std::fs::File, path: &Path) -> std::io::Result<()> {
    file.sync_all()?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    /// The next record, read into a fresh buffer.
    fn next(rd: &mut BackupReader) -> Result<Option<(RecordHead, AlignedBuf)>, LogError> {
        rd.next_record(&mut |h| Ok(AlignedBuf::zeroed(h.len)))
    }

    fn header() -> BackupHeader {
        let id = |p: &str, size| DeviceId {
            path: p.into(),
            size,
            dev: 8,
            ino: 9,
            rdev: 0,
        };
        BackupHeader {
            log: id("log", 4096),
            legs: vec![
                LegId {
                    id: id("a", 1 << 20),
                    offset: 0,
                },
                LegId {
                    id: id("b", 1 << 20),
                    offset: 8,
                },
            ],
        }
    }

    fn written(h: &BackupHeader) -> Vec<u8> {
        let mut w = BackupWriter::new(Vec::new(), h).unwrap();
        w.record(Target::Log, 0, &[1; 1536], 7).unwrap();
        w.record(Target::Leg(1), 4096, &[2; 512], 8).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_backup_reads_back_as_written() {
        let h = header();
        let bytes = written(&h);
        let mut r: &[u8] = &bytes;
        let back = BackupHeader::read(&mut r).unwrap();
        assert_eq!(back, h);
        let mut rd = BackupReader::new(&mut r, &back);
        let (a, data) = next(&mut rd).unwrap().unwrap();
        assert_eq!(
            (a.target, a.offset, a.new_crc, data.as_slice()),
            (Target::Log, 0, 7, &[1; 1536][..])
        );
        let (b, data) = next(&mut rd).unwrap().unwrap();
        assert_eq!(
            (b.target, b.offset, data.as_slice()),
            (Target::Leg(1), 4096, &[2; 512][..])
        );
        assert!(next(&mut rd).unwrap().is_none());
    }

    #[test]
    fn damage_anywhere_is_refused() {
        let h = header();
        let bytes = written(&h);
        for at in [0, 9, 30, bytes.len() - 600, bytes.len() - 5] {
            let mut b = bytes.clone();
            b[at] ^= 0x10;
            let mut r: &[u8] = &b;
            let result = BackupHeader::read(&mut r).and_then(|hd| {
                let mut rd = BackupReader::new(&mut r, &hd);
                while next(&mut rd)?.is_some() {}
                Ok(())
            });
            assert!(result.is_err(), "byte {at}");
        }
        // A backup cut short (no end record) is refused too.
        let mut r: &[u8] = &bytes[..bytes.len() - 32];
        let hd = BackupHeader::read(&mut r).unwrap();
        let mut rd = BackupReader::new(&mut r, &hd);
        assert!(next(&mut rd).is_ok() && next(&mut rd).is_ok());
        assert!(next(&mut rd).is_err());
    }

    #[test]
    fn a_record_larger_than_its_device_is_refused_before_allocating() {
        let mut h = header();
        h.legs[1].id.size = 4096;
        let mut w = BackupWriter::new(Vec::new(), &h).unwrap();
        w.record(Target::Leg(1), 4096, &[2; 512], 8).unwrap();
        let bytes = w.finish().unwrap();
        let mut r: &[u8] = &bytes;
        let hd = BackupHeader::read(&mut r).unwrap();
        let e = next(&mut BackupReader::new(&mut r, &hd));
        assert!(e.err().expect("refused").to_string().contains("do not fit"));
        // A leg's record is never longer than a resync's piece, whatever the leg's size.
        h.legs[1].id.size = 1 << 40;
        let mut w = BackupWriter::new(Vec::new(), &h).unwrap();
        w.record(Target::Leg(1), 0, &vec![0; CHUNK as usize + 512], 8)
            .unwrap();
        let bytes = w.finish().unwrap();
        let mut r: &[u8] = &bytes;
        let hd = BackupHeader::read(&mut r).unwrap();
        assert!(next(&mut BackupReader::new(&mut r, &hd)).is_err());
    }

    #[test]
    fn a_recorded_path_keeps_the_link_it_was_given_by() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("dm-3"), [0; 512]).unwrap();
        std::os::unix::fs::symlink("dm-3", dir.path().join("lv")).unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        // The directory is resolved (`sub/..` too); the link is kept, not followed.
        let given = dir.path().join("sub").join("..").join("lv");
        assert_eq!(absolute(&given), real.join("lv"));
        assert_eq!(
            DeviceId::recorded(&given, 512).path,
            real.join("lv").display().to_string()
        );
    }
}
