//! The whole runs of `log_repair` and `log_restore` on devices the caller opened: every
//! check, the work on the legs, the new buffer, the report, and the write of the log. The binaries parse arguments, open files and print what these functions report.
//!
//! Order of a repair (docs/dirty-log-format.md §9.3): everything is read and checked, and
//! the new buffer rendered, before the first write anywhere; a backup (§9.6), when asked
//! for, is then written and synced with its directory; a resync makes the legs durable
//! before the log is written; the log's first `buf_size` bytes go out in one write followed
//! by a flush, or two when the header changes (`device::write_update`, §9.4).

use std::fs::OpenOptions;
use std::io::BufWriter;
use std::ops::Range;
use std::path::Path;

use crate::pdata::io::ByteIo;

use super::backup::{
    sync_file_and_dir, BackupHeader, BackupWriter, DeviceId, LegId, Target, RECORD_HEADER,
};
use super::device::write_update;
use super::edit::{build, diff, Diff, NewLog};
use super::error::{require_bytes, LogError, GEOMETRY_SOURCE};
use super::format::geometry::{buf_size, check_region_count, Geometry};
use super::format::header::{Header, NrRegions, MAGIC};
use super::image::{read_header, LogImage, ReadOptions};
use super::repair::{count, format_ranges, BitRepair};
use super::restore::LogSpec;
use super::resync::{Leg, Legs, Verified};
use super::stream::read_pieces;

/// What `log_repair` is asked to do.
pub enum Mode<'a> {
    /// Rewrite the header; keep the bits.
    RewriteHeader,
    /// Rewrite the header and mark every region dirty.
    ForceResync,
    /// Clear the bits past the last region.
    ClearStrayBits,
    /// Mark these regions clean (the caller has confirmed the legs are identical there).
    MarkClean(Vec<Range<u64>>),
    /// Copy every dirty region from leg 0 to the other legs, then mark them clean.
    Resync(&'a [Leg<'a>]),
    /// Mark clean the dirty regions that are identical on every leg.
    Verify(&'a [Leg<'a>]),
}

impl Mode<'_> {
    /// The header rewrites: they choose `nr_regions` and fix a bad version.
    fn rewrites_header(&self) -> bool {
        matches!(self, Mode::RewriteHeader | Mode::ForceResync)
    }

    /// The modes that change legs or mark regions clean: they work on the mirror's sectors,
    /// so they need its geometry from the operator.
    fn needs_geometry(&self) -> bool {
        matches!(self, Mode::Resync(_) | Mode::Verify(_) | Mode::MarkClean(_))
    }

    /// The legs of a mode with legs.
    fn legs(&self) -> &[Leg<'_>] {
        match self {
            Mode::Resync(legs) | Mode::Verify(legs) => legs,
            _ => &[],
        }
    }
}

/// Where `--backup` saves what a run overwrites, and which devices the run works on.
pub struct BackupSpec<'a> {
    /// A new file.
    pub path: &'a Path,
    /// The log.
    pub log: DeviceId,
    /// The legs of the mode, in table order (none for the modes without legs).
    pub legs: Vec<DeviceId>,
}

/// Where the lines for the user go, as the work is done (so that a long run shows what it
/// is about to do before it does it).
pub trait Steps {
    /// One more line.
    fn step(&mut self, line: String);
}

impl Steps for Vec<String> {
    fn step(&mut self, line: String) {
        self.push(line);
    }
}

/// A repair request: the mode and what the command line says about the mirror.
pub struct RepairOptions<'a> {
    /// What to do.
    pub mode: Mode<'a>,
    /// Region count for the header rewrites.
    pub nr_regions: Option<u64>,
    /// Region size of the mirror in sectors (needed, with the length, by the modes with legs
    /// and by `MarkClean`).
    pub region_size: Option<u64>,
    /// Length of the mirror in sectors.
    pub length: Option<u64>,
    /// Logical block size of the log device.
    pub logical_block_size: u32,
    /// Report what would change; write nothing, legs included.
    pub dry_run: bool,
    /// Repair a device without the disk-log magic.
    pub force: bool,
    /// A new file to save the bytes about to be overwritten to (log and legs).
    pub backup: Option<BackupSpec<'a>>,
}

/// Where a long leg pass reports how far it got, in bytes.
pub trait Progress {
    /// A pass over `total` bytes starts, doing what `phase` says ("copying dirty
    /// regions").
    fn begin(&mut self, phase: &str, total: u64);
    /// `bytes` more bytes were copied or compared.
    fn advance(&mut self, bytes: u64);
    /// The pass is over (whether or not it succeeded).
    fn end(&mut self);
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&mut self, _phase: &str, _total: u64) {}
    fn advance(&mut self, _bytes: u64) {}
    fn end(&mut self) {}
}

/// How a repair ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The log already holds what the repair would write; nothing was written.
    Unchanged,
    /// A dry run: nothing was written.
    DryRun,
    /// The log's first `bytes` bytes were written and flushed.
    Written {
        /// `buf_size` of the new log.
        bytes: u64,
    },
}

/// The region count to repair for, from the header and the options, and the mirror's
/// geometry when it was given (always, for the modes that need it).
fn region_count(
    header: &Header,
    opts: &RepairOptions<'_>,
) -> Result<(u64, Option<Geometry>), LogError> {
    let geometry = Geometry::given(opts.region_size, opts.length)?;
    if geometry.is_none() && opts.mode.needs_geometry() {
        return Err(LogError::Geometry(format!(
            "this mode needs the mirror's region size and length; {GEOMETRY_SOURCE}"
        )));
    }
    let header_count = match header.regions() {
        // A repair writes the count back: a log for no region would only make the kernel
        // resynchronise the mirror at every activation.
        NrRegions::Count(0) => Err(LogError::NoRegions),
        NrRegions::Count(n) => Ok(n),
        NrRegions::LvmInitialised => Err(LogError::UnknownNrRegions),
        NrRegions::Invalid(n) => Err(LogError::BadNrRegions { found: n }),
    };
    if !opts.mode.rewrites_header() {
        let n = header_count?;
        if let Some(g) = &geometry {
            check_region_count(n, g)?;
        }
        return Ok((n, geometry));
    }
    let n = match (opts.nr_regions, geometry) {
        (Some(given), Some(g)) if given != g.region_count() => {
            return Err(LogError::CountConflict {
                given,
                geometry: g.region_count(),
            })
        }
        (Some(given), _) => given,
        (None, Some(g)) => {
            // A geometry that disagrees with an intact header is more likely a typo than a
            // damaged header; --nr-regions says the header is what is wrong.
            if let (true, Ok(n)) = (header.magic == MAGIC, &header_count) {
                check_region_count(*n, &g)?;
            }
            g.region_count()
        }
        (None, None) => header_count?,
    };
    Ok((n, geometry))
}

/// The legs other than leg 0, as messages name them.
fn targets(legs: &Legs<'_>) -> String {
    (1..legs.leg_count())
        .map(|i| legs.name(i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ranges a copy line ends with, after a colon; nothing when there are none.
fn listed(ranges: &[Range<u64>]) -> String {
    if ranges.is_empty() {
        String::new()
    } else {
        format!(": {}", format_ranges(ranges, 32))
    }
}

/// Leg work still to do once the new log is known: a resync's copy.
struct PendingCopy<'a> {
    legs: Legs<'a>,
    dirty: Vec<Range<u64>>,
    total: u64,
}

impl PendingCopy<'_> {
    fn line(&self, copied: &[Range<u64>]) -> String {
        format!(
            "copied {} regions ({} bytes) from {} to {}{}",
            count(copied),
            self.total,
            self.legs.name(0),
            targets(&self.legs),
            listed(copied)
        )
    }
}

/// What a repair will do, worked out without writing anything: the log as checked, what
/// happens to its bits, and the leg copy a resync still has to make.
struct Plan<'a> {
    nr: u64,
    img: LogImage,
    edit: BitRepair,
    copy: Option<PendingCopy<'a>>,
}

impl Plan<'_> {
    /// The log buffer the repair writes, with `edit` on the bits.
    fn new_log<'e>(&self, edit: &'e BitRepair) -> NewLog<'e> {
        NewLog {
            header: Header::new(self.nr),
            nr_regions: self.nr,
            edit,
        }
    }
}

/// Repairs the log on `log` as `opts` asks, in four phases: plan (read and check
/// everything, verify the legs), render (the new log buffer), back up, apply. A dry run is
/// the plan and the render without the rest. Lines for the user are appended to `report`
/// as the work is done, so that on an error they still say what happened before it.
///
/// Nothing is written before the log has been read and checked and the new buffer rendered.
/// A resync writes the legs other than leg 0 and flushes them before the log is written; a
/// failure there leaves the log as it was, so no region is marked clean whose copy did not
/// reach every leg. The log is then written in one write of its first `buf_size` bytes,
/// followed by a flush (two when the header changes: see [`write_update`]).
pub fn repair<'a>(
    log: &dyn ByteIo,
    opts: &RepairOptions<'a>,
    progress: &mut dyn Progress,
    report: &mut dyn Steps,
) -> Result<Outcome, LogError> {
    let plan = plan(log, opts, progress, report)?;
    // Old and new buffers are compared piece by piece: nothing holds either whole before
    // the buffer to write is made.
    let diff = diff(log, plan.img.buf_size(), &plan.new_log(&plan.edit))?;
    let changes = diff.changes.lines();
    if changes.is_empty() {
        if let (Some(c), false) = (&plan.copy, opts.dry_run) {
            // Nothing is dirty: the copy is empty.
            report.step(c.line(&c.dirty));
        }
        report.step("the log needs no change; nothing written".into());
        return Ok(Outcome::Unchanged);
    }
    if opts.dry_run {
        for c in &changes {
            report.step(format!("would change: {c}"));
        }
        report.step("dry run; nothing written".into());
        return Ok(Outcome::DryRun);
    }
    // The backup comes before any write, legs included: if it cannot be made, nothing has
    // been touched.
    if let Some(b) = &opts.backup {
        save_backup(b, opts.mode.legs(), log, &plan, &diff, report)?;
    }
    apply(log, &plan, &diff, &changes, progress, report)
}

/// The plan phase: every check and every read, the legs' verification included.
fn plan<'a>(
    log: &dyn ByteIo,
    opts: &RepairOptions<'a>,
    progress: &mut dyn Progress,
    report: &mut dyn Steps,
) -> Result<Plan<'a>, LogError> {
    if let Some(b) = &opts.backup {
        if b.path.exists() {
            return Err(LogError::Backup {
                path: b.path.to_path_buf(),
                message: "backup file exists; refusing to overwrite it".into(),
            });
        }
    }
    let (header, _) = read_header(log)?;
    if !opts.force {
        header.check_magic()?;
    }
    let rewrites_header = opts.mode.rewrites_header();
    if !rewrites_header {
        header.check_version()?;
    }
    let (nr, geometry) = region_count(&header, opts)?;
    // The legs are checked against the geometry before anything is read for the repair.
    let legs = match (&opts.mode, geometry) {
        (Mode::Resync(legs) | Mode::Verify(legs), Some(g)) => Some(Legs::new(legs, g)?),
        _ => None,
    };
    let img = LogImage::read(
        log,
        &ReadOptions {
            logical_block_size: opts.logical_block_size,
            nr_regions: Some(nr),
            accept_bad_magic: opts.force,
            accept_bad_version: rewrites_header,
        },
    )?;
    let (edit, copy) = match (&opts.mode, legs) {
        (Mode::Resync(_), Some(legs)) => {
            let copy = plan_copy(log, &img, legs)?;
            if opts.dry_run {
                report.step(format!(
                    "would copy {} dirty regions ({} bytes) from {} to {}{}",
                    count(&copy.dirty),
                    copy.total,
                    copy.legs.name(0),
                    targets(&copy.legs),
                    listed(&copy.dirty)
                ));
            }
            // A resync marks exactly the dirty regions clean.
            let edit = BitRepair::MarkClean(copy.dirty.clone());
            (edit, Some(copy))
        }
        (Mode::Verify(_), Some(legs)) => (verify(log, &img, &legs, progress, report)?, None),
        (mode, _) => {
            let edit = bit_repair(mode);
            // Checked as given, so that a refusal names a range the operator typed.
            edit.check(nr)?;
            (edit.merged(), None)
        }
    };
    Ok(Plan {
        nr,
        img,
        edit,
        copy,
    })
}

/// The dirty ranges of the log, read from the device.
fn dirty_ranges(log: &dyn ByteIo, img: &LogImage) -> Result<Vec<Range<u64>>, LogError> {
    let mut ranges = img.dirty_ranges(log);
    let dirty = ranges.by_ref().collect();
    ranges.finish()?;
    Ok(dirty)
}

/// The copy a resync makes: every dirty region, from leg 0 to the other legs.
fn plan_copy<'a>(
    log: &dyn ByteIo,
    img: &LogImage,
    legs: Legs<'a>,
) -> Result<PendingCopy<'a>, LogError> {
    let dirty = dirty_ranges(log, img)?;
    let total = legs.dirty_bytes(&dirty);
    Ok(PendingCopy { legs, dirty, total })
}

/// A verification: the dirty regions identical on every leg become clean.
fn verify(
    log: &dyn ByteIo,
    img: &LogImage,
    legs: &Legs<'_>,
    progress: &mut dyn Progress,
    report: &mut dyn Steps,
) -> Result<BitRepair, LogError> {
    let dirty = dirty_ranges(log, img)?;
    progress.begin("comparing dirty regions", legs.dirty_bytes(&dirty));
    let found = legs.verify(&dirty, &mut |n| progress.advance(n));
    progress.end();
    let Verified { same, differ } = found?;
    report.step(if differ.is_empty() {
        "every dirty region is identical on all legs".to_string()
    } else {
        format!(
            "{} regions differ between legs and stay dirty: {}",
            count(&differ),
            format_ranges(&differ, usize::MAX)
        )
    });
    Ok(BitRepair::MarkClean(same))
}

/// The apply phase: a resync's copy to the legs, then the write of the log.
fn apply(
    log: &dyn ByteIo,
    plan: &Plan<'_>,
    diff: &Diff,
    changes: &[String],
    progress: &mut dyn Progress,
    report: &mut dyn Steps,
) -> Result<Outcome, LogError> {
    let change_lines = changes.iter().map(|c| format!("changes: {c}"));
    if let Some(c) = &plan.copy {
        progress.begin("copying dirty regions", c.total);
        let copied = c.legs.resync(&c.dirty, &mut |n| progress.advance(n));
        progress.end();
        copied?;
        report.step(c.line(&c.dirty));
    }
    change_lines.for_each(|l| report.step(l));
    // The one buffer this run holds whole: the one it writes. The device still holds what
    // was compared, so the new buffer is made from it again.
    let new_log = plan.new_log(&plan.edit);
    let mut new = build(log, plan.img.buf_size(), &new_log, diff.old_crc)?;
    write_update(log, &diff.old_header, &mut new, diff.rest_changes)?;
    report.step(format!("wrote {} bytes and flushed", new.len()));
    Ok(Outcome::Written {
        bytes: new.len() as u64,
    })
}

/// The bit repair of a mode without legs.
fn bit_repair(mode: &Mode<'_>) -> BitRepair {
    match mode {
        Mode::ForceResync => BitRepair::ForceResync,
        Mode::ClearStrayBits => BitRepair::ClearStrayBits,
        Mode::MarkClean(r) => BitRepair::MarkClean(r.clone()),
        Mode::RewriteHeader | Mode::Resync(_) | Mode::Verify(_) => BitRepair::KeepBits,
    }
}

/// Saves what the run is about to overwrite to the new file `b.path`: the log's `old`
/// bytes (replaced by `new`) and, for a resync, every piece of the dirty regions on the
/// legs it writes. The file and its directory are synced before this returns, so that the
/// backup survives a crash during the writes that follow.
fn save_backup(
    b: &BackupSpec<'_>,
    legs: &[Leg<'_>],
    log: &dyn ByteIo,
    plan: &Plan<'_>,
    diff: &Diff,
    report: &mut dyn Steps,
) -> Result<(), LogError> {
    let fail = |doing: &str, e: std::io::Error| LogError::Backup {
        path: b.path.to_path_buf(),
        message: format!("{doing}: {e}"),
    };
    let header = BackupHeader {
        log: b.log.clone(),
        legs: b
            .legs
            .iter()
            .zip(legs)
            .map(|(id, l)| LegId {
                id: id.clone(),
                offset: l.offset,
            })
            .collect(),
    };
    let log_part = RECORD_HEADER + plan.img.buf_size();
    let (leg_part, what) = match &plan.copy {
        Some(c) => {
            let written = c.legs.leg_count() as u64 - 1;
            let bytes = written * (c.total + c.legs.piece_count(&c.dirty) * RECORD_HEADER);
            let what = format!(
                " and the {} bytes of the dirty regions on {} about to be overwritten",
                c.total * written,
                targets(&c.legs)
            );
            (bytes, what)
        }
        None => (0, String::new()),
    };
    let size = header.encode().len() as u64 + log_part + leg_part + RECORD_HEADER;
    report.step(format!(
        "backup: writing {size} bytes to {}: the log's first {} bytes{what}",
        b.path.display(),
        plan.img.buf_size()
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(b.path)
        .map_err(|e| fail("creating the backup", e))?;
    // A backup cut short is no backup, and its name would refuse the next run's: it is
    // removed on an error, or a signal, before it is complete.
    crate::interrupt::remove_on_signal(b.path, b.path);
    let written = write_backup(file, b, &header, log, plan, diff, &fail);
    crate::interrupt::forget(b.path);
    if let Err(e) = written {
        let _ = std::fs::remove_file(b.path);
        return Err(e);
    }
    report.step(format!(
        "backup: {} written and synced, with its directory; log_repair --undo {} puts it back",
        b.path.display(),
        b.path.display()
    ));
    Ok(())
}

/// Writes and syncs the backup into `file`, newly created at `b.path`.
fn write_backup(
    file: std::fs::File,
    b: &BackupSpec<'_>,
    header: &BackupHeader,
    log: &dyn ByteIo,
    plan: &Plan<'_>,
    diff: &Diff,
    fail: &dyn Fn(&str, std::io::Error) -> LogError,
) -> Result<(), LogError> {
    let mut w = BackupWriter::new(BufWriter::new(file), header)
        .map_err(|e| fail("writing the backup", e))?;
    // The log's bytes are read again, in pieces: the device still holds what was compared,
    // which the checksum, taken then, confirms.
    let len = plan.img.buf_size();
    w.begin_record(Target::Log, 0, len, diff.old_crc, diff.new_crc)
        .map_err(|e| fail("writing the backup", e))?;
    let mut crc = 0;
    read_pieces(log, len, &mut |_, piece| {
        crc = crc32c::crc32c_append(crc, piece);
        w.data(piece).map_err(|e| fail("writing the backup", e))
    })?;
    if crc != diff.old_crc {
        let changed = std::io::Error::other("the log changed while it was being read");
        return Err(fail("writing the backup", changed));
    }
    if let Some(c) = &plan.copy {
        c.legs.before_resync(&c.dirty, &mut |p| {
            w.record(Target::Leg(p.leg), p.offset, p.data, p.new_crc)
                .map_err(|e| fail("writing the backup", e))
        })?;
    }
    let file = w
        .finish()
        .and_then(|buf| buf.into_inner().map_err(|e| e.into_error()))
        .map_err(|e| fail("writing the backup", e))?;
    sync_file_and_dir(&file, b.path).map_err(|e| fail("syncing the backup", e))
}

/// Writes the log `spec` describes onto `log`: header and bits into the first `buf_size`
/// bytes, which keep the rest of their content (header area, bytes after the bitmap), in one
/// write followed by a flush (two when the header changes: see [`write_update`]). Returns
/// `buf_size`.
///
/// A device shorter than `buf_size` is refused before anything is allocated, so a region
/// count in the XML never sizes memory beyond what the device holds. Unless `force`, so is a
/// device whose log is for another region count: the XML of another mirror.
pub fn restore(
    log: &dyn ByteIo,
    spec: &LogSpec,
    logical_block_size: u32,
    force: bool,
) -> Result<u64, LogError> {
    let len = buf_size(spec.regions, logical_block_size);
    require_bytes("log buffer", len, log.size_bytes())?;
    let (old, _) = read_header(log)?;
    if !force {
        if let (true, NrRegions::Count(n)) = (old.magic == MAGIC, old.regions()) {
            if n != 0 && n != spec.nr_regions {
                return Err(LogError::OtherMirror {
                    on_device: n,
                    described: spec.nr_regions,
                });
            }
        }
    }
    let new_log = NewLog {
        header: spec.header(),
        nr_regions: spec.regions,
        edit: spec,
    };
    // Whether the bytes past the header change decides how the header goes out; then the
    // buffer is made whole, the one this run holds.
    let diff = diff(log, len, &new_log)?;
    let mut new = build(log, len, &new_log, diff.old_crc)?;
    write_update(log, &diff.old_header, &mut new, diff.rest_changes)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::io::MemIo;

    fn spec(regions: u64, dirty: Vec<Range<u64>>) -> LogSpec {
        LogSpec {
            version: 2,
            nr_regions: regions,
            regions,
            dirty,
        }
    }

    #[test]
    fn restore_keeps_the_bytes_around_the_header_and_bits() {
        let io = MemIo::from_bytes(vec![0xAB; 4096]);
        let s = spec(16, vec![3..5, 9..10]);
        assert_eq!(restore(&io, &s, 512, false).unwrap(), 1536);
        let b = io.into_bytes();
        assert_eq!(&b[0..4], &[0x72, 0x52, 0x69, 0x4D]);
        assert_eq!(&b[16..1024], &[0xAB; 1008][..]);
        // Regions 0..16 clean except 3, 4 and 9; the rest of the 64-bit word is clear.
        assert_eq!(&b[1024..1032], &[0xE7, 0xFD, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[1032..], &vec![0xAB; 4096 - 1032][..]);
    }

    #[test]
    fn restore_refuses_a_short_device_before_allocating() {
        let io = MemIo::from_bytes(vec![7; 1100]);
        assert!(matches!(
            restore(&io, &spec(16, vec![]), 512, true),
            Err(LogError::Truncated {
                need: 1536,
                size: 1100,
                ..
            })
        ));
        // 2^32 - 1 regions would need 512 MiB of bitmap: refused by the device's size alone.
        assert!(matches!(
            restore(&io, &spec(u32::MAX.into(), vec![]), 512, true),
            Err(LogError::Truncated { size: 1100, .. })
        ));
        assert_eq!(io.into_bytes(), vec![7; 1100]);
    }

    #[test]
    fn restore_refuses_the_log_of_another_mirror_unless_forced() {
        let mut raw = vec![0u8; 1536];
        Header::new(512).pack(&mut raw);
        let io = MemIo::from_bytes(raw.clone());
        assert!(matches!(
            restore(&io, &spec(16, vec![]), 512, false),
            Err(LogError::OtherMirror {
                on_device: 512,
                described: 16
            })
        ));
        assert_eq!(io.into_bytes(), raw);
        let io = MemIo::from_bytes(raw);
        assert_eq!(restore(&io, &spec(16, vec![]), 512, true).unwrap(), 1536);
    }

    #[test]
    fn a_conflicting_region_count_is_refused_before_reading_the_bits() {
        let mut raw = vec![0u8; 1536];
        Header::new(512).pack(&mut raw);
        let io = MemIo::from_bytes(raw.clone());
        let opts = RepairOptions {
            mode: Mode::ForceResync,
            nr_regions: Some(100),
            region_size: Some(128),
            length: Some(65536),
            logical_block_size: 512,
            dry_run: false,
            force: false,
            backup: None,
        };
        let mut report = Vec::new();
        assert!(matches!(
            repair(&io, &opts, &mut NoProgress, &mut report),
            Err(LogError::CountConflict {
                given: 100,
                geometry: 512
            })
        ));
        assert!(report.is_empty());
        assert_eq!(io.into_bytes(), raw);
    }
}
