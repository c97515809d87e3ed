//! The whole runs of `log_repair` and `log_restore` on devices the caller opened: every
//! check, the work on the legs, the new buffer, the report, and the write of the log. The binaries parse arguments, open files and print what these functions report.
//!
//! Order of a repair (docs/dirty-log-format.md §9.3): everything is read and checked, and
//! the new buffer rendered, before the first write anywhere; a resync makes the legs durable
//! before the log is written; the log's first `buf_size` bytes go out in one write followed
//! by a flush, or two when the header changes (`device::write_update`, §9.4).

use std::fs::OpenOptions;
use std::io::Write;
use std::ops::Range;
use std::path::Path;

use crate::pdata::io::{AlignedBuf, ByteIo};

use super::bitmap::Bitmap;
use super::device::{read_prefix, write_update};
use super::error::LogError;
use super::geometry::{buf_size, check_region_count, length_from_legs, Geometry, LengthSource};
use super::header::{Header, NrRegions, MAGIC};
use super::image::{compose, read_header, LogImage, ReadOptions};
use super::repair::{count, describe_changes, format_ranges, BitRepair};
use super::restore::LogSpec;
use super::resync::{Leg, Legs};

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
}

/// A repair request: the mode and what the command line says about the mirror.
pub struct RepairOptions<'a> {
    /// What to do.
    pub mode: Mode<'a>,
    /// Region count for the header rewrites.
    pub nr_regions: Option<u64>,
    /// Region size of the mirror in sectors (needed by the modes with legs).
    pub region_size: Option<u64>,
    /// Length of the mirror in sectors (default for the legs: `nr_regions` × region size).
    pub length: Option<u64>,
    /// Logical block size of the log device.
    pub logical_block_size: u32,
    /// Report what would change; write nothing, legs included.
    pub dry_run: bool,
    /// Repair a device without the disk-log magic.
    pub force: bool,
    /// A new file to save the bytes about to be overwritten to.
    pub backup: Option<&'a Path>,
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

/// The region count to repair for, from the header and the options.
fn region_count(header: &Header, opts: &RepairOptions<'_>) -> Result<u64, LogError> {
    let geometry = match (opts.region_size, opts.length) {
        (Some(rs), Some(len)) => Some(Geometry::new(rs, len)?),
        _ => None,
    };
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
        if let Some(g) = geometry {
            check_region_count(n, &g, LengthSource::Given)?;
        }
        return Ok(n);
    }
    match (opts.nr_regions, geometry) {
        (Some(given), Some(g)) if given != g.region_count() => Err(LogError::CountConflict {
            given,
            geometry: g.region_count(),
        }),
        (Some(given), _) => Ok(given),
        (None, Some(g)) => {
            // A geometry that disagrees with an intact header is more likely a typo than a
            // damaged header; --nr-regions says the header is what is wrong.
            if let (true, Ok(n)) = (header.magic == MAGIC, &header_count) {
                check_region_count(*n, &g, LengthSource::Given)?;
            }
            Ok(g.region_count())
        }
        (None, None) => header_count,
    }
}

/// The geometry of a mode with legs: the region size given, and the length given or else
/// the legs', which must cut the mirror into the log's `nr` regions.
fn leg_geometry(legs: &[Leg<'_>], nr: u64, opts: &RepairOptions<'_>) -> Result<Geometry, LogError> {
    let (length, from) = match opts.length {
        Some(len) => (len, LengthSource::Given),
        None => {
            let sizes: Vec<(u64, u64)> =
                legs.iter().map(|l| (l.io.size_bytes(), l.offset)).collect();
            (length_from_legs(&sizes)?, LengthSource::Legs)
        }
    };
    let geometry = Geometry::new(opts.region_size.unwrap_or(0), length)?;
    check_region_count(nr, &geometry, from)?;
    Ok(geometry)
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
            "copied {} regions from leg 0 to {} other legs ({} bytes): {}",
            count(copied),
            self.legs.leg_count() - 1,
            self.total,
            format_ranges(copied, 32)
        )
    }
}

/// What a repair will do, worked out without writing anything: the log as read, its new
/// bits, and the leg copy a resync still has to make.
struct Plan<'a> {
    nr: u64,
    img: LogImage,
    bits: Bitmap,
    copy: Option<PendingCopy<'a>>,
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
    report: &mut Vec<String>,
) -> Result<Outcome, LogError> {
    let plan = plan(log, opts, progress, report)?;
    let (old, new) = plan.img.render(
        log,
        &Header::new(plan.nr),
        &plan.bits,
        buf_size(plan.nr, opts.logical_block_size),
    )?;
    let changes = describe_changes(old.as_slice(), new.as_slice());
    if changes.is_empty() {
        if let (Some(c), false) = (&plan.copy, opts.dry_run) {
            // Nothing is dirty: the copy is empty.
            report.push(c.line(&c.dirty));
        }
        report.push("the log needs no change; nothing written".into());
        return Ok(Outcome::Unchanged);
    }
    if opts.dry_run {
        report.extend(changes.iter().map(|c| format!("would change: {c}")));
        report.push("dry run; nothing written".into());
        return Ok(Outcome::DryRun);
    }
    // The backup comes before any write, legs included: if it cannot be made, nothing has
    // been touched.
    if let Some(b) = opts.backup {
        save_backup(b, &old)?;
        report.push(format!(
            "saved the {} bytes about to be overwritten to {}",
            old.len(),
            b.display()
        ));
    }
    apply(log, &plan, old, new, &changes, progress, report)
}

/// The plan phase: every check and every read, the legs' verification included.
fn plan<'a>(
    log: &dyn ByteIo,
    opts: &RepairOptions<'a>,
    progress: &mut dyn Progress,
    report: &mut Vec<String>,
) -> Result<Plan<'a>, LogError> {
    if let Some(b) = opts.backup {
        if b.exists() {
            return Err(LogError::Backup {
                path: b.to_path_buf(),
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
    let nr = region_count(&header, opts)?;
    // The legs' geometry is settled before anything is read for the repair.
    let legs = match &opts.mode {
        Mode::Resync(legs) | Mode::Verify(legs) => {
            Some(Legs::new(legs, leg_geometry(legs, nr, opts)?)?)
        }
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
    let (bits, copy) = match (&opts.mode, legs) {
        (Mode::Resync(_), Some(legs)) => {
            let copy = plan_copy(legs, &img.bitmap);
            if opts.dry_run {
                report.push(format!(
                    "would copy {} dirty regions ({} bytes) from leg 0 to {} other legs: {}",
                    count(&copy.dirty),
                    copy.total,
                    copy.legs.leg_count() - 1,
                    format_ranges(&copy.dirty, 32)
                ));
            }
            // A resync marks exactly the dirty regions clean.
            let mut bits = img.bitmap.clone();
            for d in &copy.dirty {
                bits.set_range(d.clone(), true);
            }
            (bits, Some(copy))
        }
        (Mode::Verify(_), Some(legs)) => (verify(&legs, &img.bitmap, progress, report)?, None),
        (mode, _) => (bit_repair(mode).apply(&img.bitmap)?, None),
    };
    Ok(Plan {
        nr,
        img,
        bits,
        copy,
    })
}

/// The copy a resync makes: every dirty region, from leg 0 to the other legs.
fn plan_copy<'a>(legs: Legs<'a>, bitmap: &Bitmap) -> PendingCopy<'a> {
    let total = legs.dirty_bytes(bitmap);
    PendingCopy {
        legs,
        dirty: bitmap.dirty_ranges(),
        total,
    }
}

/// A verification: the dirty regions identical on every leg become clean.
fn verify(
    legs: &Legs<'_>,
    bitmap: &Bitmap,
    progress: &mut dyn Progress,
    report: &mut Vec<String>,
) -> Result<Bitmap, LogError> {
    let mut bits = bitmap.clone();
    progress.begin("comparing dirty regions", legs.dirty_bytes(&bits));
    let differ = legs.verify(&mut bits, &mut |n| progress.advance(n));
    progress.end();
    let differ = differ?;
    report.push(if differ.is_empty() {
        "every dirty region is identical on all legs".to_string()
    } else {
        format!(
            "{} regions differ between legs and stay dirty: {}",
            count(&differ),
            format_ranges(&differ, usize::MAX)
        )
    });
    Ok(bits)
}

/// The apply phase: a resync's copy to the legs, then the write of the log.
fn apply(
    log: &dyn ByteIo,
    plan: &Plan<'_>,
    old: AlignedBuf,
    new: AlignedBuf,
    changes: &[String],
    progress: &mut dyn Progress,
    report: &mut Vec<String>,
) -> Result<Outcome, LogError> {
    let change_lines = changes.iter().map(|c| format!("changes: {c}"));
    let new = match &plan.copy {
        Some(c) => {
            progress.begin("copying dirty regions", c.total);
            let mut copied_bits = plan.img.bitmap.clone();
            let copied = c
                .legs
                .resync(&mut copied_bits, &mut |n| progress.advance(n));
            progress.end();
            let copied = copied?;
            report.push(c.line(&copied));
            report.extend(change_lines);
            // The log marks clean what the resync says reached every leg (the same regions
            // as planned).
            compose(&old, &Header::new(plan.nr), &copied_bits)
        }
        None => {
            report.extend(change_lines);
            new
        }
    };
    write_update(log, &old, &new)?;
    report.push(format!("wrote {} bytes and flushed", new.len()));
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

/// Saves `old` to the new file `path` and makes it durable, before the log is overwritten.
fn save_backup(path: &Path, old: &AlignedBuf) -> Result<(), LogError> {
    let fail = |doing: &str, e: std::io::Error| LogError::Backup {
        path: path.to_path_buf(),
        message: format!("{doing}: {e}"),
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| fail("creating the backup", e))?;
    f.write_all(old.as_slice())
        .and_then(|()| f.sync_all())
        .map_err(|e| fail("writing the backup", e))
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
    let size = log.size_bytes();
    if size < len {
        return Err(LogError::Truncated {
            what: "log buffer",
            need: len,
            size,
        });
    }
    let base = read_prefix(log, len)?;
    if !force {
        let old = Header::unpack(base.as_slice())?;
        if let (true, NrRegions::Count(n)) = (old.magic == MAGIC, old.regions()) {
            if n != 0 && n != spec.nr_regions {
                return Err(LogError::OtherMirror {
                    on_device: n,
                    described: spec.nr_regions,
                });
            }
        }
    }
    let new = compose(&base, &spec.header(), &spec.bitmap());
    write_update(log, &base, &new)?;
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
