//! The run of log_repair, once its command line is read: a repair in one mode, or the undo
//! of one, with what a signal leaves said.

use std::path::Path;

use indicatif::ProgressBar;

use super::explain::explain;
use super::plan::{Plan, RepairMode, Task};
use super::report::Report;
use super::Args;
use crate::cli::open::refuse_unless;
use crate::cli::report::{file_error, OnFileExt};
use crate::cli::{byte_progress, say, EXIT_OK};
use crate::commands::log_files::open_log;
use crate::identify::Content;
use crate::interrupt::{self, Guarded};
use crate::log::backup::{BackupHeader, DeviceId};
use crate::log::device::logical_block_size;
use crate::log::format::FORMAT;
use crate::log::interrupted::{unfinished_repair, Counted};
use crate::log::resync::{open_legs, Leg, LegSpec, OpenLeg};
use crate::log::run::{repair, BackupSpec, Outcome, Progress, RepairOptions};
use crate::log::undo::{read_header, undo, UndoDevice, UndoOptions};
use crate::log::LogError;
use crate::pdata::io::{ByteIo, OpenMode};

/// The state an interrupted undo leaves the devices in.
const UNDO_UNFINISHED: &str = "part of the backup may have been put back (the log first); \
run the same --undo again to finish";

/// The progress bar of a leg pass, shown only on a terminal and never with -q.
struct Bar {
    bar: ProgressBar,
    quiet: bool,
}

impl Progress for Bar {
    fn begin(&mut self, phase: &str, total: u64) {
        self.bar = byte_progress(total, self.quiet);
        self.bar.set_message(phase.to_string());
    }

    fn advance(&mut self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn end(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The run `plan` says: a repair or an undo. Returns the exit status and, when the run got
/// that far, how it ended.
pub(super) fn run(
    args: &Args,
    plan: Plan,
    report: &mut Report,
) -> anyhow::Result<(u8, Option<Outcome>)> {
    let name = args.log.display().to_string();
    interrupt::writing_to(&name);
    if args.clustered && !args.quiet {
        say(&format!(
            "log_repair: {name}: warning: log: clustered-disk log (cmirrord): treated as a kernel \
             disk log, which is right only if it was written on a little-endian host; no \
             cluster node may have the mirror active"
        ));
    }
    let mode = if args.dry_run {
        OpenMode::ReadExclusive
    } else {
        OpenMode::Write
    };
    match plan.task {
        Task::Undo(backup) => run_undo(args, &backup, &plan.legs, mode, report),
        Task::Repair(repair_mode) => run_repair(args, repair_mode, &plan.legs, mode, report),
    }
}

/// An undo: puts back what the run that wrote `backup` overwrote.
fn run_undo(
    args: &Args,
    backup: &Path,
    given: &[LegSpec],
    mode: OpenMode,
    report: &mut Report,
) -> anyhow::Result<(u8, Option<Outcome>)> {
    let header = read_header(backup).on_file(backup)?;
    let specs = undo_legs(args, given, &header)?;
    let io = open_log(&args.log, mode)?;
    if !args.force {
        refuse_unless(&io, &args.log, &FORMAT, Content::repairable_in_place_by)?;
    }
    let opened =
        open_legs(&specs, &args.log, !args.dry_run).map_err(|e| explain(&args.log, &io, e))?;
    let result = {
        let guarded_log = Guarded::new(&io);
        let guarded: Vec<_> = opened.iter().map(|l| Guarded::new(&l.io)).collect();
        let legs: Vec<UndoDevice> = opened
            .iter()
            .zip(&guarded)
            .map(|(l, g)| UndoDevice {
                io: g,
                id: DeviceId::of(&l.spec.path, l.io.size_bytes()),
            })
            .collect();
        let log = UndoDevice {
            io: &guarded_log,
            id: DeviceId::of(&args.log, io.size_bytes()),
        };
        let opts = UndoOptions {
            backup,
            dry_run: args.dry_run,
            force: args.force,
        };
        undo(&header, &log, &legs, &opts, report)
    };
    finish(args, &io, result, UNDO_UNFINISHED)
}

/// A repair in `repair_mode`, on the legs `specs` for the modes that have legs.
fn run_repair(
    args: &Args,
    repair_mode: RepairMode,
    specs: &[LegSpec],
    mode: OpenMode,
    report: &mut Report,
) -> anyhow::Result<(u8, Option<Outcome>)> {
    let io = open_log(&args.log, mode)?;
    let lbs = logical_block_size(&args.log, args.logical_block_size).on_file(&args.log)?;
    if !args.force {
        refuse_unless(&io, &args.log, &FORMAT, Content::repairable_in_place_by)?;
    }
    let opened = open_legs(specs, &args.log, args.resync && !args.dry_run)
        .map_err(|e| explain(&args.log, &io, e))?;
    let guarded: Vec<_> = opened.iter().map(|l| Guarded::new(&l.io)).collect();
    // The writes that complete say, if a signal stops the run, which state it left.
    let counted: Vec<_> = guarded.iter().map(|g| Counted::new(g)).collect();
    let legs: Vec<Leg> = opened
        .iter()
        .zip(&counted)
        .map(|(l, c)| Leg {
            io: c,
            ..l.as_leg()
        })
        .collect();
    let opts = RepairOptions {
        mode: repair_mode.with_legs(&legs),
        nr_regions: args.nr_regions,
        region_size: args.region_size,
        length: args.length,
        logical_block_size: lbs,
        dry_run: args.dry_run,
        force: args.force,
        backup: args.backup.as_deref().map(|path| BackupSpec {
            path,
            log: DeviceId::recorded(&args.log, io.size_bytes()),
            legs: opened.iter().map(leg_id).collect(),
        }),
    };
    let mut bar = Bar {
        bar: ProgressBar::hidden(),
        quiet: args.quiet,
    };
    let guarded_log = Guarded::new(&io);
    let log = Counted::new(&guarded_log);
    let result = repair(&log, &opts, &mut bar, report);
    let leg_writes = counted.iter().map(Counted::writes).sum();
    let unfinished = unfinished_repair(log.writes(), leg_writes);
    finish(args, &io, result, &unfinished)
}

/// A leg as a backup records it.
fn leg_id(l: &OpenLeg) -> DeviceId {
    DeviceId::recorded(&l.spec.path, l.io.size_bytes())
}

/// The legs of an undo: those the backup names, or those `given` (as many, same offsets).
fn undo_legs(
    args: &Args,
    given: &[LegSpec],
    header: &BackupHeader,
) -> anyhow::Result<Vec<LegSpec>> {
    let recorded = header.legs.iter().map(|l| LegSpec {
        path: l.id.path.clone().into(),
        offset: l.offset,
    });
    if given.is_empty() {
        return Ok(recorded.collect());
    }
    if given.len() != header.legs.len() {
        return Err(file_error(
            &args.log,
            format!(
                "undo: the backup names {} legs, {} given with --leg",
                header.legs.len(),
                given.len()
            ),
        ));
    }
    for (i, (g, r)) in given.iter().zip(recorded).enumerate() {
        if g.offset != r.offset {
            return Err(file_error(
                &g.path,
                format!(
                    "leg {i}: undo: offset {} given, but the backup's leg {i} ({}) starts at \
                     sector {}",
                    g.offset,
                    r.path.display(),
                    r.offset
                ),
            ));
        }
    }
    Ok(given.to_vec())
}

/// The end of a run: what a signal left, or the outcome, or the error on the file it is
/// about.
fn finish(
    args: &Args,
    io: &dyn ByteIo,
    result: Result<Outcome, LogError>,
    unfinished: &str,
) -> anyhow::Result<(u8, Option<Outcome>)> {
    if let Some(status) = interrupt::after_write(&args.log, &result, unfinished) {
        return Ok((status, result.ok()));
    }
    let outcome = result.map_err(|e| explain(&args.log, io, e))?;
    Ok((EXIT_OK, Some(outcome)))
}
