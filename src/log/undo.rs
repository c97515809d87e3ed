//! `log_repair --undo`: puts back every byte a run saved with `--backup` (log and legs),
//! after checking the whole backup and the devices (docs/dirty-log-format.md §9.6).
//!
//! Order: every record is read and checked, and each device's current bytes compared with
//! what the run wrote, before the first write. The log goes back first and is flushed, then
//! the legs: a crash in between leaves the regions the run marked clean dirty again, which
//! the kernel resynchronises, never a clean region whose legs differ.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::pdata::io::{AlignedBuf, ByteIo};

use super::backup::{BackupHeader, BackupReader, DeviceId, Record, Target};
use super::error::LogError;
use super::run::{Outcome, Steps};

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

/// Checks that `now` is the device `recorded` describes.
fn check_device(
    now: &DeviceId,
    recorded: &DeviceId,
    force: bool,
    wrong: impl Fn(String) -> LogError,
) -> Result<(), LogError> {
    if now.size != recorded.size {
        return Err(wrong(format!(
            "undo: holds {} bytes, but the backup was taken from {} of {} bytes",
            now.size, recorded.path, recorded.size
        )));
    }
    if !force && !now.same_as(recorded) {
        return Err(wrong(format!(
            "undo: not the device or file the backup was taken from ({}); --force puts the \
             backup back anyway",
            recorded.path
        )));
    }
    Ok(())
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
    check_device(&log.id, &header.log, opts.force, LogError::Undo)?;
    for (i, (now, recorded)) in legs.iter().zip(&header.legs).enumerate() {
        check_device(&now.id, &recorded.id, opts.force, |message| LogError::Leg {
            index: i,
            name: now.id.path.clone(),
            message,
        })?;
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
    let slot = |t: Target| match t {
        Target::Log => 0,
        Target::Leg(i) => i + 1,
    };
    for_each_record(header, opts.backup, &mut |r| {
        let now = read(device(r.target), r.offset, r.data.len(), &name(r.target))?;
        let crc = crc32c::crc32c(now.as_slice());
        if crc != r.new_crc && now.as_slice() != r.data.as_slice() && !opts.force {
            let message = format!(
                "undo: bytes {}..{} hold neither what the run wrote nor what the backup holds: \
                 changed since (the mirror was activated?); --force puts the backup back anyway",
                r.offset,
                r.offset + r.data.len() as u64
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
        let t = &mut tally[slot(r.target)];
        t.records += 1;
        t.bytes += r.data.len() as u64;
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
    report.step(format!(
        "undo: the backup {} is intact and matches the devices: {}",
        opts.backup.display(),
        summary.join(", ")
    ));
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
    // leg is written.
    let mut log_synced = false;
    let flush = |t: Target| {
        device(t)
            .sync()
            .map_err(|e| LogError::io(format!("flushing {}", name(t)), e))
    };
    for_each_record(header, opts.backup, &mut |r| {
        if r.target != Target::Log && !log_synced && tally[0].records > 0 {
            flush(Target::Log)?;
            report.step(format!(
                "put back {} bytes of {}",
                tally[0].bytes,
                name(Target::Log)
            ));
            log_synced = true;
        }
        let mut buf = AlignedBuf::zeroed(r.data.len());
        buf.as_mut_slice().copy_from_slice(&r.data);
        device(r.target)
            .write_at(buf.as_slice(), r.offset)
            .map_err(|e| LogError::io(format!("writing {}", name(r.target)), e))
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

/// Hands every record of the backup to `f`, in file order.
fn for_each_record(
    header: &BackupHeader,
    path: &Path,
    f: &mut dyn FnMut(Record) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut input = open(path)?;
    // The header was checked by the caller; reading it again skips it.
    if BackupHeader::read(&mut input).map_err(|e| about_backup(path, e))? != *header {
        return Err(about_backup(
            path,
            LogError::Invalid("the file changed while it was read".into()),
        ));
    }
    // Each record must fit its device (whose size was checked), so no allocation exceeds
    // the largest device.
    let max_len = header
        .legs
        .iter()
        .map(|l| l.id.size)
        .chain([header.log.size])
        .max()
        .unwrap_or(0);
    let mut reader = BackupReader::new(&mut input as &mut dyn Read, header, max_len);
    while let Some(r) = reader.next_record().map_err(|e| about_backup(path, e))? {
        f(r)?;
    }
    Ok(())
}

/// Reads `len` bytes at `offset` of `io`.
fn read(io: &dyn ByteIo, offset: u64, len: usize, name: &str) -> Result<AlignedBuf, LogError> {
    let mut buf = AlignedBuf::zeroed(len);
    io.read_at(buf.as_mut_slice(), offset)
        .map_err(|e| LogError::io(format!("reading {name}"), e))?;
    Ok(buf)
}
