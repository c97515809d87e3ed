//! `log_repair --undo`: puts back every byte a run saved with `--backup` (log and legs),
//! after checking the whole backup and the devices (docs/dirty-log-format.md §9.6).
//!
//! Order: every record is read and checked, and each device's current bytes compared with
//! what the run wrote, before the first write. The log goes back first and is flushed, then
//! the legs: a crash in between leaves the regions the run marked clean dirty again, which
//! the kernel resynchronises, never a clean region whose legs differ. While the log's bits
//! are rewritten, its header is [`UNDO_IN_PROGRESS`]: the kernel trusts no bit under it, and
//! an undo run again knows the log for one it left half-written.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::pdata::io::{AlignedBuf, ByteIo};

use super::backup::{absolute, BackupHeader, BackupReader, DeviceId, RecordHead, Target};
use super::device::{read_prefix, write_prefix};
use super::error::LogError;
use super::format::header::HEADER_SIZE;
use super::format::UNDO_IN_PROGRESS;
use super::run::{Outcome, Steps};
use super::stream::PIECE_BYTES;

/// Bytes that each land whole or not at all (the smallest logical block).
const SECTOR: usize = 512;

/// The header an undo of a log record writes while it rewrites the bits: `data_crc` is
/// the crc32c of the bytes it puts back, `new_crc` the record's.
fn undo_header(data_crc: u32, new_crc: u32) -> [u8; HEADER_SIZE] {
    let mut h = [0; HEADER_SIZE];
    h[..8].copy_from_slice(UNDO_IN_PROGRESS);
    LE::write_u32(&mut h[8..12], data_crc);
    LE::write_u32(&mut h[12..], new_crc);
    h
}

/// A device an undo writes to (or, for leg 0, only checks), with what it is now.
pub struct UndoDevice<'a> {
    /// The device.
    pub io: &'a dyn ByteIo,
    /// Its identity as found now.
    pub id: DeviceId,
}

/// What `--undo` is asked to do.
pub struct UndoOptions<'a> {
    /// The backup file.
    pub backup: &'a Path,
    /// Check everything and report; write nothing.
    pub dry_run: bool,
    /// Accept devices that are not the ones the backup names (by device number or inode)
    /// and bytes that changed since the run. Sizes must still match.
    pub force: bool,
}

/// Reads the header of the backup at `path`.
pub fn read_header(path: &Path) -> Result<BackupHeader, LogError> {
    let mut f = open(path)?;
    BackupHeader::read(&mut f).map_err(|e| about_backup(path, e))
}

fn open(path: &Path) -> Result<BufReader<File>, LogError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| about_backup(path, LogError::io("opening", e)))
}

/// An error in the backup file, reported on it.
fn about_backup(path: &Path, e: LogError) -> LogError {
    LogError::Backup {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Checks that `now` is the device `recorded` describes: the size always; the identity
/// unless `force`, which accepts another one. Returns what `force` accepted, for the report.
/// `what` names the device in the remedy ("the log", "leg 1").
fn check_device(
    now: &DeviceId,
    recorded: &DeviceId,
    what: &str,
    force: bool,
    wrong: impl Fn(String) -> LogError,
) -> Result<Option<String>, LogError> {
    if now.size != recorded.size {
        return Err(wrong(format!(
            "undo: holds {} bytes, but the backup was taken from {} of {} bytes",
            now.size, recorded.path, recorded.size
        )));
    }
    if now.same_as(recorded) {
        return Ok(None);
    }
    let here = absolute(Path::new(&now.path)).display().to_string();
    if force {
        return Ok(Some(format!(
            "{what} {here} is not the device or file the backup was taken from ({})",
            recorded.path
        )));
    }
    let numbers = format!("{} then, {} now", numbers(recorded), numbers(now));
    let both_block = now.rdev != 0 && recorded.rdev != 0;
    let (differs, remedy) = if Path::new(&recorded.path).is_relative() {
        // A backup of an earlier version: the path is relative to a directory it does not
        // record, so the same path here may name another file.
        (
            format!(
                "the backup records the relative path {} (a backup of an earlier log_repair, \
                 which does not record the directory it ran in), here {here}; {numbers}",
                recorded.path
            ),
            "run the undo in the directory the run was made in, or give the log and the legs \
             (--leg) it wrote by their full paths"
                .to_string(),
        )
    } else if recorded.path == here {
        let same = if both_block {
            "the same device renumbered (by a reboot)"
        } else {
            "the same file, replaced by a copy of itself"
        };
        (
            format!("{here}: {numbers}"),
            format!("if it is {same}, --force puts the backup back anyway"),
        )
    } else if both_block {
        (
            format!(
                "the backup records {}, this is {here}; {numbers}",
                recorded.path
            ),
            format!(
                "if {here} is that device under a new name (after a reboot), --force puts the \
                 backup back anyway"
            ),
        )
    } else if what == "the log" {
        (
            format!(
                "the backup records {}, this is {here}; {numbers}",
                recorded.path
            ),
            "name the log the backup was taken from".to_string(),
        )
    } else {
        (
            format!(
                "the backup records {}, this is {here}; {numbers}",
                recorded.path
            ),
            "give the legs the backup was taken from with --leg, or no --leg for the paths it \
             records"
                .to_string(),
        )
    };
    Err(wrong(format!(
        "undo: not the device or file the backup was taken from: {differs}; {remedy}"
    )))
}

/// The numbers that tell a device or file apart, in words.
fn numbers(id: &DeviceId) -> String {
    let pair = |dev: u64| {
        // Linux's split of a 64-bit device number: the major's 12 low bits at 8..20 and
        // the rest from bit 44, the minor's 8 low bits at 0..8 and the rest at 20..44.
        let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
        let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
        format!("{major}:{minor}")
    };
    if id.rdev != 0 {
        format!("block device {}", pair(id.rdev))
    } else {
        format!("inode {} on device {}", id.ino, pair(id.dev))
    }
}

/// What an undo puts back on one device.
#[derive(Default, Clone, Copy)]
struct Tally {
    records: u64,
    bytes: u64,
}

/// The undo: checks, then (unless a dry run) puts every saved byte back. `legs` are the
/// legs in table order, as many as the backup names.
pub fn undo(
    header: &BackupHeader,
    log: &UndoDevice<'_>,
    legs: &[UndoDevice<'_>],
    opts: &UndoOptions<'_>,
    report: &mut dyn Steps,
) -> Result<Outcome, LogError> {
    if legs.len() != header.legs.len() {
        return Err(LogError::Invalid(format!(
            "undo: the backup names {} legs, {} given",
            header.legs.len(),
            legs.len()
        )));
    }
    // What --force accepted, for the report: it must not say the devices match.
    let mut forced = Vec::new();
    forced.extend(check_device(
        &log.id,
        &header.log,
        "the log",
        opts.force,
        LogError::Undo,
    )?);
    for (i, (now, recorded)) in legs.iter().zip(&header.legs).enumerate() {
        forced.extend(check_device(
            &now.id,
            &recorded.id,
            &format!("leg {i}"),
            opts.force,
            |message| LogError::Leg {
                index: i,
                name: now.id.path.clone(),
                message,
            },
        )?);
    }
    let device = |t: Target| match t {
        Target::Log => log.io,
        Target::Leg(i) => legs[i].io,
    };
    let name = |t: Target| match t {
        Target::Log => format!("the log {}", log.id.path),
        Target::Leg(i) => format!("leg {i} {}", legs[i].id.path),
    };
    // Pass 1: the whole backup is intact, and each range holds what the run wrote there
    // (or already what the backup holds).
    let mut tally = vec![Tally::default(); legs.len() + 1];
    // Ranges --force accepted that hold neither the run's bytes nor the backup's.
    let mut changed = vec![0u64; legs.len() + 1];
    let slot = |t: Target| match t {
        Target::Log => 0,
        Target::Leg(i) => i + 1,
    };
    // What pass 2 needs of each log buffer before it reads the buffer's bytes again.
    let mut log_buffers = Vec::new();
    for_each_seen(header, opts.backup, &device, legs, &mut |seen| {
        let (r, now) = (&seen.head, &seen.now);
        if is_log_buffer(r.target, r.offset, r.len) {
            // A second log buffer (a run writes one) is compared with what the first put
            // back only in pass 2: it is taken to differ, which writes it under the marker.
            let differ = !now.tail_backup || !log_buffers.is_empty();
            log_buffers.push(LogBuffer {
                head: *r,
                data_crc: seen.data_crc,
                differ,
            });
        }
        let crc = now.crc;
        let expected = crc == r.new_crc
            || now.backup
            || opts.force
            || interrupted_copy(header, r, &seen.leg_data, device(r.target), legs)?
            || (is_log_buffer(r.target, r.offset, r.len)
                && now.header == undo_header(seen.data_crc, r.new_crc));
        if !expected {
            let message = format!(
                "undo: bytes {}..{} hold neither what the run wrote nor what the backup holds: \
                 changed since (the mirror was activated?); --force puts the backup back anyway",
                r.offset,
                r.offset + r.len as u64
            );
            return Err(match r.target {
                Target::Log => LogError::Undo(message),
                Target::Leg(index) => LogError::Leg {
                    index,
                    name: legs[index].id.path.clone(),
                    message,
                },
            });
        }
        if opts.force && crc != r.new_crc && !now.backup {
            changed[slot(r.target)] += 1;
        }
        let t = &mut tally[slot(r.target)];
        t.records += 1;
        t.bytes += r.len as u64;
        Ok(())
    })?;
    let targets: Vec<Target> = std::iter::once(Target::Log)
        .chain((0..legs.len()).map(Target::Leg))
        .filter(|&t| tally[slot(t)].records > 0)
        .collect();
    let summary: Vec<String> = targets
        .iter()
        .map(|&t| format!("{} bytes of {}", tally[slot(t)].bytes, name(t)))
        .collect();
    forced.extend(targets.iter().filter(|&&t| changed[slot(t)] > 0).map(|&t| {
        let n = changed[slot(t)];
        format!(
            "{n} range{} of {} changed since the run",
            if n == 1 { "" } else { "s" },
            name(t)
        )
    }));
    report.step(if forced.is_empty() {
        format!(
            "undo: the backup {} is intact and matches the devices: {}",
            opts.backup.display(),
            summary.join(", ")
        )
    } else {
        format!(
            "undo: the backup {} is intact: {}; accepted by --force: {}",
            opts.backup.display(),
            summary.join(", "),
            forced.join("; ")
        )
    });
    if opts.dry_run {
        for &t in &targets {
            report.step(format!(
                "would put back {} bytes of {}",
                tally[slot(t)].bytes,
                name(t)
            ));
        }
        report.step("dry run; nothing written".into());
        return Ok(Outcome::DryRun);
    }
    // Pass 2: the log's records come first in the file; it is flushed before the first
    // leg is written. Each record's bytes are read into the buffer that is written.
    let mut log_synced = false;
    let flush = |t: Target| {
        device(t)
            .sync()
            .map_err(|e| io_error(t, legs, "flushing", e))
    };
    let mut log_buffers = log_buffers.into_iter();
    // The log buffer whose bytes are being read, as pass 1 saw it.
    let reading = std::cell::Cell::new(None);
    let buffer = &mut |h: &RecordHead| {
        if !is_log_buffer(h.target, h.offset, h.len) {
            return Ok(AlignedBuf::zeroed(h.len));
        }
        let seen = log_buffers
            .next()
            .filter(|b| b.head == *h)
            .ok_or_else(|| changed_while_read(opts.backup))?;
        reading.set(Some(seen));
        begin_log(device(h.target), &seen)
    };
    for_each_record(header, opts.backup, buffer, &mut |h, mut buf| {
        if h.target != Target::Log && !log_synced && tally[0].records > 0 {
            flush(Target::Log)?;
            report.step(format!(
                "put back {} bytes of {}",
                tally[0].bytes,
                name(Target::Log)
            ));
            log_synced = true;
        }
        if let Some(seen) = reading.take() {
            if crc32c::crc32c(buf.as_slice()) != seen.data_crc {
                return Err(changed_while_read(opts.backup));
            }
            return put_back_log(device(h.target), &seen, &mut buf);
        }
        device(h.target)
            .write_at(buf.as_slice(), h.offset)
            .map_err(|e| io_error(h.target, legs, "writing", e))
    })?;
    for &t in &targets {
        if t == Target::Log && log_synced {
            continue;
        }
        flush(t)?;
        report.step(format!(
            "put back {} bytes of {}",
            tally[slot(t)].bytes,
            name(t)
        ));
    }
    Ok(Outcome::Written {
        bytes: tally.iter().map(|t| t.bytes).sum(),
    })
}

/// Whether the record of `len` bytes at `offset` of `target` is the log's buffer (at
/// offset 0 of the log, at least its header's sector).
fn is_log_buffer(target: Target, offset: u64, len: usize) -> bool {
    target == Target::Log && offset == 0 && len >= SECTOR
}

/// A log buffer of the backup as pass 1 saw it: its head, the crc32c of its bytes, and
/// whether the log holds other bytes than the backup's past the header's sector.
#[derive(Clone, Copy)]
struct LogBuffer {
    head: RecordHead,
    data_crc: u32,
    differ: bool,
}

impl LogBuffer {
    /// The header the log holds while the bits are rewritten.
    fn marker(&self) -> [u8; HEADER_SIZE] {
        undo_header(self.data_crc, self.head.new_crc)
    }
}

/// The error of a backup whose records are not those pass 1 checked.
fn changed_while_read(path: &Path) -> LogError {
    about_backup(
        path,
        LogError::Invalid("the file changed while it was read".into()),
    )
}

/// Puts a log buffer of the backup back over what the log holds now (both from offset 0),
/// each write whole and flushed. When only the header's sector changes, one write, which
/// lands whole or not at all. Otherwise the bits are rewritten under the undo's marker (a
/// torn write of them, or one under either header, could have the kernel trust a bit
/// neither log has it trust, and would leave bytes a second undo could not tell from a log
/// changed since): the marker over the current bits, then over the backup's, then the
/// backup's buffer whole; the first and last writes change only the header's sector.
///
/// One buffer for all three writes: [`begin_log`] makes the first of the buffer it then
/// returns, the backup's bytes are read into that buffer, and [`put_back_log`] makes the
/// other two.
fn begin_log(io: &dyn ByteIo, seen: &LogBuffer) -> Result<AlignedBuf, LogError> {
    if !seen.differ {
        return Ok(AlignedBuf::zeroed(seen.head.len));
    }
    let mut now = read_prefix(io, seen.head.len as u64)?;
    now.as_mut_slice()[..HEADER_SIZE].copy_from_slice(&seen.marker());
    write_prefix(io, &now)?;
    Ok(now)
}

/// The last writes of [`begin_log`]'s: `buf`, the backup's bytes, under the marker when the
/// bits change, then as they are.
fn put_back_log(io: &dyn ByteIo, seen: &LogBuffer, buf: &mut AlignedBuf) -> Result<(), LogError> {
    if seen.differ {
        let mut header = [0u8; HEADER_SIZE];
        header.copy_from_slice(&buf.as_slice()[..HEADER_SIZE]);
        buf.as_mut_slice()[..HEADER_SIZE].copy_from_slice(&seen.marker());
        write_prefix(io, buf)?;
        buf.as_mut_slice()[..HEADER_SIZE].copy_from_slice(&header);
    }
    write_prefix(io, buf)
}

/// What a device holds where a record goes, against the record.
struct Now {
    /// crc32c of the bytes.
    crc: u32,
    /// Whether they are the backup's bytes already.
    backup: bool,
    /// Whether those past the first sector are.
    tail_backup: bool,
    /// The first 16 bytes (zeros past a shorter record).
    header: [u8; HEADER_SIZE],
}

/// A record as the checks see it: its head, the crc32c of its bytes, what the device holds
/// there now, and a leg's bytes (one piece of a resync: small). A log's bytes are not kept.
struct Seen {
    head: RecordHead,
    data_crc: u32,
    now: Now,
    leg_data: Vec<u8>,
}

/// Hands every record of the backup to `f`, in file order, each read a piece at a time
/// and compared as it goes with what its device (`device`) holds: a log's record is its
/// whole buffer, which the checks need no copy of.
fn for_each_seen<'d>(
    header: &BackupHeader,
    path: &Path,
    device: &dyn Fn(Target) -> &'d dyn ByteIo,
    legs: &[UndoDevice<'_>],
    f: &mut dyn FnMut(Seen) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut input = reopen(header, path)?;
    let mut reader = BackupReader::new(&mut input as &mut dyn Read, header);
    let piece = crate::cast::index(PIECE_BYTES);
    let mut now_piece = AlignedBuf::zeroed(0);
    loop {
        let mut now = Now {
            crc: 0,
            backup: true,
            tail_backup: true,
            header: [0; HEADER_SIZE],
        };
        let (mut data_crc, mut leg_data, mut failed) = (0, Vec::new(), None);
        let next = reader.next_in_pieces(piece, &mut |h, off, bytes| {
            data_crc = crc32c::crc32c_append(data_crc, bytes);
            if h.target != Target::Log {
                leg_data.extend_from_slice(bytes);
            }
            // A device's error waits for the record's checksum: a damaged backup is
            // reported first, as when the record was read whole.
            if failed.is_some() {
                return;
            }
            if now_piece.len() < bytes.len() {
                now_piece = AlignedBuf::zeroed(bytes.len());
            }
            let here = &mut now_piece.as_mut_slice()[..bytes.len()];
            if let Err(e) = device(h.target).read_at(here, h.offset + off) {
                failed = Some(io_error(h.target, legs, "reading", e));
                return;
            }
            if off == 0 {
                let n = HEADER_SIZE.min(here.len());
                now.header[..n].copy_from_slice(&here[..n]);
            }
            now.crc = crc32c::crc32c_append(now.crc, here);
            now.backup &= *here == *bytes;
            let from = crate::cast::index((SECTOR as u64).saturating_sub(off)).min(here.len());
            now.tail_backup &= here[from..] == bytes[from..];
        });
        let Some(head) = next.map_err(|e| about_backup(path, e))? else {
            return Ok(());
        };
        if let Some(e) = failed {
            return Err(e);
        }
        f(Seen {
            head,
            data_crc,
            now,
            leg_data,
        })?;
    }
}

/// Whether what the leg of record `r` (the backup's bytes `data`) holds there now is what an
/// undo stopped by a power cut may leave: each 512-byte sector (what a device writes whole)
/// the backup's bytes or the run's. A resync writes on a leg what leg 0 holds at the same place of the mirror, and
/// neither it nor the undo writes leg 0: so the run's bytes are read there, and `new_crc`
/// confirms them. Without this, a crash in the middle of a leg's write would leave bytes
/// that a second undo refuses as changed since the run.
fn interrupted_copy(
    header: &BackupHeader,
    r: &RecordHead,
    data: &[u8],
    io: &dyn ByteIo,
    legs: &[UndoDevice<'_>],
) -> Result<bool, LogError> {
    let Target::Leg(i) = r.target else {
        return Ok(false);
    };
    // A leg's record is one piece of a resync: small.
    let now = read(io, r.offset, r.len, r.target, legs)?;
    let now = now.as_slice();
    let start = |leg: usize| header.legs[leg].offset.checked_mul(SECTOR as u64);
    let at = start(i)
        .and_then(|s| r.offset.checked_sub(s))
        .zip(start(0))
        .and_then(|(inside, s0)| inside.checked_add(s0));
    let len = r.len as u64;
    let source = legs[0].io;
    let Some(at) = at.filter(|&a| a.checked_add(len).is_some_and(|e| e <= source.size_bytes()))
    else {
        return Ok(false);
    };
    let run = read(source, at, r.len, Target::Leg(0), legs)?;
    if crc32c::crc32c(run.as_slice()) != r.new_crc {
        return Ok(false);
    }
    Ok(now
        .chunks(SECTOR)
        .zip(run.as_slice().chunks(SECTOR))
        .zip(data.chunks(SECTOR))
        .all(|((n, w), b)| n == w || n == b))
}

/// Hands every record of the backup to `f`, in file order, its bytes read into the buffer
/// `buffer` makes for its head (which may write: its errors are the devices', not the
/// backup's).
fn for_each_record(
    header: &BackupHeader,
    path: &Path,
    buffer: &mut dyn FnMut(&RecordHead) -> Result<AlignedBuf, LogError>,
    f: &mut dyn FnMut(RecordHead, AlignedBuf) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut input = reopen(header, path)?;
    let mut reader = BackupReader::new(&mut input as &mut dyn Read, header);
    loop {
        let mut failed = None;
        let next = reader.next_record(&mut |h| {
            buffer(h).map_err(|e| {
                failed = Some(e);
                LogError::Invalid(String::new())
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        match next.map_err(|e| about_backup(path, e))? {
            Some((h, data)) => f(h, data)?,
            None => return Ok(()),
        }
    }
}

/// The backup at `path` opened again, past its header, which must be `header` (checked by
/// the caller). The devices' sizes were checked against the header's: a record that fits
/// its device sizes no allocation beyond the device.
fn reopen(header: &BackupHeader, path: &Path) -> Result<BufReader<File>, LogError> {
    let mut input = open(path)?;
    if BackupHeader::read(&mut input).map_err(|e| about_backup(path, e))? != *header {
        return Err(about_backup(
            path,
            LogError::Invalid("the file changed while it was read".into()),
        ));
    }
    Ok(input)
}

/// Reads `len` bytes at `offset` of `io`, device `t`.
fn read(
    io: &dyn ByteIo,
    offset: u64,
    len: usize,
    t: Target,
    legs: &[UndoDevice<'_>],
) -> Result<AlignedBuf, LogError> {
    let mut buf = AlignedBuf::zeroed(len);
    io.read_at(buf.as_mut_slice(), offset)
        .map_err(|e| io_error(t, legs, "reading", e))?;
    Ok(buf)
}

/// An I/O error on device `t`, about that device: a leg's error line names the leg as its
/// file, the log's the log.
fn io_error(t: Target, legs: &[UndoDevice<'_>], doing: &str, e: std::io::Error) -> LogError {
    match t {
        Target::Log => LogError::io(format!("{doing} the log"), e),
        Target::Leg(i) => LogError::Leg {
            index: i,
            name: legs[i].id.path.clone(),
            message: format!("{doing}: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::backup::{BackupWriter, LegId};
    use crate::pdata::fault_io::{FaultIo, Inject, Op};
    use crate::pdata::io::MemIo;

    fn id(path: &str, size: u64) -> DeviceId {
        DeviceId {
            path: path.into(),
            size,
            dev: 1,
            ino: 2,
            rdev: 0,
        }
    }

    /// A log of 2048 bytes and two legs of 8192, as a resync left them (the log's first
    /// 1536 bytes 0xBB, leg 1's bytes 4096..8192 0xCC), and a backup of what they held
    /// before (0xAA and 0x11).
    struct Bench {
        _dir: tempfile::TempDir,
        backup: std::path::PathBuf,
        header: BackupHeader,
    }

    fn bench() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("bak");
        let header = BackupHeader {
            log: id("log", 2048),
            legs: vec![
                LegId {
                    id: id("leg0", 8192),
                    offset: 0,
                },
                LegId {
                    id: id("leg1", 8192),
                    offset: 0,
                },
            ],
        };
        let file = std::fs::File::create(&backup).unwrap();
        let mut w = BackupWriter::new(file, &header).unwrap();
        w.record(Target::Log, 0, &[0xAA; 1536], crc32c::crc32c(&[0xBB; 1536]))
            .unwrap();
        w.record(
            Target::Leg(1),
            4096,
            &[0x11; 4096],
            crc32c::crc32c(&[0xCC; 4096]),
        )
        .unwrap();
        w.finish().unwrap();
        Bench {
            _dir: dir,
            backup,
            header,
        }
    }

    fn dev<'a>(io: &'a dyn ByteIo, path: &str, size: u64) -> UndoDevice<'a> {
        UndoDevice {
            io,
            id: id(path, size),
        }
    }

    fn after_run() -> (Vec<u8>, Vec<u8>) {
        let mut log = vec![0xBB; 1536];
        log.extend([0x55; 512]);
        let mut leg1 = vec![0x77; 4096];
        leg1.extend([0xCC; 4096]);
        (log, leg1)
    }

    #[test]
    fn the_log_goes_back_and_is_flushed_before_any_leg_is_written() {
        let b = bench();
        let (log_bytes, leg1_bytes) = after_run();
        let log = FaultIo::new(MemIo::from_bytes(log_bytes.clone()), Inject::None);
        let leg0 = MemIo::from_bytes(vec![0; 8192]);
        // Leg 1 loses power at its first write.
        let leg1 = FaultIo::new(MemIo::from_bytes(leg1_bytes.clone()), Inject::StopAt(0));
        let opts = UndoOptions {
            backup: &b.backup,
            dry_run: false,
            force: false,
        };
        let mut steps = Vec::new();
        {
            let legs = [dev(&leg0, "leg0", 8192), dev(&leg1, "leg1", 8192)];
            let r = undo(&b.header, &dev(&log, "log", 2048), &legs, &opts, &mut steps);
            assert!(r.is_err());
        }
        // The bits change: they go back under the undo's header, written over the run's
        // first, then the whole buffer; the log is flushed before any leg.
        assert_eq!(
            log.ops(),
            vec![
                Op::WriteAt(0),
                Op::Flush,
                Op::WriteAt(0),
                Op::Flush,
                Op::WriteAt(0),
                Op::Flush,
                Op::Flush
            ]
        );
        let mut expected = vec![0xAA; 1536];
        expected.extend([0x55; 512]);
        assert_eq!(log.into_inner().into_bytes(), expected);
        assert_eq!(leg1.into_inner().into_bytes(), leg1_bytes);
        // Run again, the undo finishes: the log already holds the backup's bytes.
        let log = MemIo::from_bytes(expected.clone());
        let leg1 = MemIo::from_bytes(leg1_bytes);
        {
            let legs = [dev(&leg0, "leg0", 8192), dev(&leg1, "leg1", 8192)];
            let r = undo(&b.header, &dev(&log, "log", 2048), &legs, &opts, &mut steps);
            assert_eq!(r.unwrap(), Outcome::Written { bytes: 1536 + 4096 });
        }
        let mut leg1_before = vec![0x77; 4096];
        leg1_before.extend([0x11; 4096]);
        assert_eq!(leg1.into_bytes(), leg1_before);
        assert_eq!(log.into_bytes(), expected);
    }

    #[test]
    fn another_size_or_identity_is_refused_before_any_write() {
        let b = bench();
        let (log_bytes, leg1_bytes) = after_run();
        let leg0 = MemIo::from_bytes(vec![0; 8192]);
        let leg1 = MemIo::from_bytes(leg1_bytes);
        let opts = UndoOptions {
            backup: &b.backup,
            dry_run: false,
            force: true,
        };
        let legs = [
            UndoDevice {
                io: &leg0,
                id: id("leg0", 8192),
            },
            UndoDevice {
                io: &leg1,
                id: id("leg1", 8192),
            },
        ];
        let mut other = id("log", 2048);
        other.ino = 3;
        let mut steps = Vec::new();
        for (log_id, force) in [(id("log", 4096), true), (other.clone(), false)] {
            let log = MemIo::from_bytes(log_bytes.clone());
            let opts = UndoOptions { force, ..opts };
            let dev = UndoDevice {
                io: &log,
                id: log_id,
            };
            assert!(matches!(
                undo(&b.header, &dev, &legs, &opts, &mut steps),
                Err(LogError::Undo(_))
            ));
            assert_eq!(log.into_bytes(), log_bytes);
        }
        // --force accepts another identity, never another size.
        let log = MemIo::from_bytes(log_bytes);
        let dev = UndoDevice {
            io: &log,
            id: other,
        };
        assert!(undo(&b.header, &dev, &legs, &opts, &mut steps).is_ok());
    }

    #[test]
    fn a_refusal_says_what_differs_and_offers_force_only_where_it_fits() {
        let block = |path: &str, rdev: u64| DeviceId {
            path: path.into(),
            size: 1 << 20,
            dev: 5,
            ino: 7,
            rdev,
        };
        let refusal = |now: &DeviceId, recorded: &DeviceId| match check_device(
            now,
            recorded,
            "leg 1",
            false,
            LogError::Undo,
        ) {
            Err(LogError::Undo(m)) => m,
            other => panic!("{other:?}"),
        };
        // The same path, renumbered: 8:17 is 0x811, 8:33 is 0x821.
        let m = refusal(
            &block("/nonexistent/sdb1", 0x821),
            &block("/nonexistent/sdb1", 0x811),
        );
        assert_eq!(
            m,
            "undo: not the device or file the backup was taken from: /nonexistent/sdb1: block \
             device 8:17 then, block device 8:33 now; if it is the same device renumbered (by a \
             reboot), --force puts the backup back anyway"
        );
        // Another name: --force only if it is that device.
        let m = refusal(
            &block("/nonexistent/sdc1", 0x821),
            &block("/nonexistent/sdb1", 0x811),
        );
        assert!(m.ends_with(
            "if /nonexistent/sdc1 is that device under a new name (after a reboot), --force \
             puts the backup back anyway"
        ));
        // Another regular file: no --force.
        let file = |path: &str, ino: u64| DeviceId {
            rdev: 0,
            ino,
            ..block(path, 0)
        };
        let m = refusal(
            &file("/nonexistent/b/leg1", 9),
            &file("/nonexistent/a/leg1", 7),
        );
        assert_eq!(
            m,
            "undo: not the device or file the backup was taken from: the backup records \
             /nonexistent/a/leg1, this is /nonexistent/b/leg1; inode 7 on device 0:5 then, \
             inode 9 on device 0:5 now; give the legs the backup was taken from with --leg, \
             or no --leg for the paths it records"
        );
        // --force accepts another identity, and says so for the report.
        let accepted = check_device(
            &file("/nonexistent/b/leg1", 9),
            &file("/nonexistent/a/leg1", 7),
            "leg 1",
            true,
            LogError::Undo,
        );
        assert_eq!(
            accepted.unwrap().as_deref(),
            Some(
                "leg 1 /nonexistent/b/leg1 is not the device or file the backup was taken \
                 from (/nonexistent/a/leg1)"
            )
        );
    }
}
