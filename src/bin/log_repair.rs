//! log_repair: rewrite the header or the clean bits of a dm-log disk dirty log, resynchronise
//! the mirror legs offline, or put back what such a run overwrote.

use std::io::Write;
use std::process::ExitCode;

use indicatif::ProgressBar;

use era_log_tools::cli::open::{advice, check_target};
use era_log_tools::cli::report::{error_message, file_error, OnFileExt};
use era_log_tools::cli::{byte_progress, run_quiet, say, EXIT_OK};
use era_log_tools::commands::log_files::open_log;
use era_log_tools::commands::log_repair::Args;
use era_log_tools::commands::ReportFormat;
use era_log_tools::interrupt::{self, Guarded};
use era_log_tools::json::Object;
use era_log_tools::log::backup::{BackupHeader, DeviceId};
use era_log_tools::log::device::logical_block_size;
use era_log_tools::log::error::Subject;
use era_log_tools::log::format::FORMAT;
use era_log_tools::log::interrupted::{unfinished_repair, Counted};
use era_log_tools::log::repair::parse_ranges;
use era_log_tools::log::resync::{open_legs, Leg, LegSpec, OpenLeg};
use era_log_tools::log::run::{
    repair as run_repair, BackupSpec, Mode, Outcome, Progress, RepairOptions, Steps,
};
use era_log_tools::log::undo::{read_header, undo, UndoDevice, UndoOptions};
use era_log_tools::log::LogError;
use era_log_tools::pdata::io::{ByteIo, OpenMode};

fn usage_error(msg: &str) -> ! {
    era_log_tools::commands::usage_error_with::<Args>(msg, &usage_json)
}

/// A usage error's JSON object, when `--format json` was asked.
fn usage_json(what: &str) {
    // Best effort: the exit status and stderr tell the outcome anyway.
    let _ = print_json(None, &[], None, Some(what.to_string()));
}

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

/// The steps of the run: printed as they come in text (`log_repair: LOG: step`, so that
/// the size of a backup shows before it is written), kept for the JSON object otherwise.
struct Report {
    name: String,
    text: bool,
    steps: Vec<String>,
    /// The first write of the report that failed: the run goes on, and ends with exit
    /// status 1 once it is over.
    lost: Option<std::io::Error>,
}

impl Steps for Report {
    fn step(&mut self, line: String) {
        if self.text && self.lost.is_none() {
            let mut out = std::io::stdout().lock();
            // A report that cannot be written must not stop a repair half-way.
            if let Err(e) =
                writeln!(out, "log_repair: {}: {line}", self.name).and_then(|()| out.flush())
            {
                self.lost = Some(e);
            }
        }
        self.steps.push(line);
    }
}

/// The error of a run whose report was lost: a reader that went away ends the tool quietly
/// (a broken pipe, as every tool); any other write error is said, with what the run did.
fn lost_report(cli: &Args, e: std::io::Error, outcome: Outcome) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return e.into();
    }
    let did = match outcome {
        Outcome::Written { .. } if cli.undo.is_some() => "the backup was put back",
        Outcome::Written { .. } if cli.resync => "the legs and the log were written",
        Outcome::Written { .. } => "the log was written",
        Outcome::DryRun => "nothing was written (dry run)",
        Outcome::Unchanged => "nothing was written (the log needed no change)",
    };
    file_error("stdout", format!("{e}; the report was lost; {did}"))
}

fn main() -> ExitCode {
    let cli = era_log_tools::commands::parse_with::<Args>(&usage_json);
    let with_legs = cli.resync || cli.verify;
    if !cli.legs.is_empty() && !with_legs && cli.undo.is_none() {
        usage_error("--leg is only used by --resync, --verify and --undo");
    }
    if with_legs && cli.legs.len() < 2 {
        usage_error("a mirror has at least 2 legs: give --leg for each, in table order");
    }
    // Values clap takes as text are read here, so that one it cannot read is a usage error
    // (exit 2) like any other.
    for leg in &cli.legs {
        if let Err(e) = LegSpec::parse(leg) {
            usage_error(&e.to_string());
        }
    }
    if let Some(Err(e)) = cli.mark_clean.as_deref().map(parse_ranges) {
        usage_error(&e.to_string());
    }
    let mut report = Report {
        name: cli.log.display().to_string(),
        text: cli.format == ReportFormat::Text,
        steps: Vec::new(),
        lost: None,
    };
    run_quiet("log_repair", cli.quiet, || {
        // The report goes to stdout as the run goes: a closed stdout is refused first.
        era_log_tools::cli::output::require_stdout()?;
        let result = run(&cli, &mut report);
        if cli.format == ReportFormat::Json {
            let error = result.as_ref().err().map(error_message);
            let outcome = result.as_ref().ok().and_then(|(_, o)| o.as_ref());
            let printed = print_json(
                Some(cli.log.display().to_string()),
                &report.steps,
                outcome,
                error,
            );
            if let Err(e) = printed {
                report.lost.get_or_insert(e);
            }
        }
        // A run that failed says so on stderr whatever happened to its report; one that
        // was stopped by a signal has said which state it left.
        let (status, outcome) = result?;
        match (report.lost.take(), outcome) {
            (Some(e), Some(outcome)) if status == EXIT_OK => Err(lost_report(&cli, e, outcome)),
            _ => Ok(status),
        }
    })
}

/// The state an interrupted undo leaves the devices in.
const UNDO_UNFINISHED: &str = "part of the backup may have been put back (the log first); \
run the same --undo again to finish";

/// The error as the user sees it: about the file it concerns (the log, a leg, the backup),
/// with what to do about the header problems the options can fix.
fn explain(args: &Args, log: &dyn ByteIo, e: LogError) -> anyhow::Error {
    let hint = match e {
        LogError::BadMagic { .. } => {
            let advice = advice(log, &FORMAT)
                .map(|a| format!("; {a}"))
                .unwrap_or_default();
            format!("{advice}; --force repairs it anyway")
        }
        LogError::BadVersion { .. } => {
            "; fix it first with --rewrite-header (or --force-resync)".into()
        }
        LogError::RegionCountMismatch { .. } => " (if the header's count is what is wrong, \
            rewrite it with --rewrite-header --nr-regions N)"
            .into(),
        _ => String::new(),
    };
    match e.subject() {
        Subject::Log => file_error(&args.log, format!("{e}{hint}")),
        Subject::Leg(name) => file_error(name, format!("{e}{hint}")),
        Subject::File(path) => file_error(path, format!("{e}{hint}")),
    }
}

/// The run: a repair or an undo. Returns the exit status and, when the run got that far,
/// how it ended.
fn run(cli: &Args, report: &mut Report) -> anyhow::Result<(u8, Option<Outcome>)> {
    let name = cli.log.display().to_string();
    interrupt::writing_to(&name);
    if cli.clustered && !cli.quiet {
        say(&format!(
            "log_repair: {name}: warning: log: clustered-disk log (cmirrord): treated as a kernel \
             disk log, which is right only if it was written on a little-endian host; no \
             cluster node may have the mirror active"
        ));
    }
    let mode = if cli.dry_run {
        OpenMode::ReadExclusive
    } else {
        OpenMode::Write
    };
    if let Some(backup) = &cli.undo {
        let header = read_header(backup).on_file(backup)?;
        let specs = undo_legs(cli, &header)?;
        let io = open_log(&cli.log, mode)?;
        check_target(&io, &cli.log, &FORMAT, cli.force)?;
        let opened = open_legs(&specs, &cli.log, !cli.dry_run).map_err(|e| explain(cli, &io, e))?;
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
                id: DeviceId::of(&cli.log, io.size_bytes()),
            };
            let opts = UndoOptions {
                backup,
                dry_run: cli.dry_run,
                force: cli.force,
            };
            undo(&header, &log, &legs, &opts, report)
        };
        return finish(cli, &io, result, UNDO_UNFINISHED);
    }
    let specs = cli
        .legs
        .iter()
        .map(|s| LegSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .on_file(&cli.log)?;
    let mark = cli
        .mark_clean
        .as_deref()
        .map(parse_ranges)
        .transpose()
        .on_file(&cli.log)?;
    let io = open_log(&cli.log, mode)?;
    let lbs = logical_block_size(&cli.log, cli.logical_block_size).on_file(&cli.log)?;
    check_target(&io, &cli.log, &FORMAT, cli.force)?;
    let opened = open_legs(&specs, &cli.log, cli.resync && !cli.dry_run)
        .map_err(|e| explain(cli, &io, e))?;
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
    let mode = if cli.rewrite_header {
        Mode::RewriteHeader
    } else if cli.force_resync {
        Mode::ForceResync
    } else if cli.clear_stray_bits {
        Mode::ClearStrayBits
    } else if cli.resync {
        Mode::Resync(&legs)
    } else if cli.verify {
        Mode::Verify(&legs)
    } else if let Some(r) = mark {
        Mode::MarkClean(r)
    } else {
        usage_error("give one mode")
    };
    let opts = RepairOptions {
        mode,
        nr_regions: cli.nr_regions,
        region_size: cli.region_size,
        length: cli.length,
        logical_block_size: lbs,
        dry_run: cli.dry_run,
        force: cli.force,
        backup: cli.backup.as_deref().map(|path| BackupSpec {
            path,
            log: DeviceId::recorded(&cli.log, io.size_bytes()),
            legs: opened.iter().map(leg_id).collect(),
        }),
    };
    let mut bar = Bar {
        bar: ProgressBar::hidden(),
        quiet: cli.quiet,
    };
    let guarded_log = Guarded::new(&io);
    let log = Counted::new(&guarded_log);
    let result = run_repair(&log, &opts, &mut bar, report);
    let leg_writes = counted.iter().map(Counted::writes).sum();
    let unfinished = unfinished_repair(log.writes(), leg_writes);
    finish(cli, &io, result, &unfinished)
}

fn leg_id(l: &OpenLeg) -> DeviceId {
    DeviceId::recorded(&l.spec.path, l.io.size_bytes())
}

/// The legs of an undo: those the backup names, or those given (as many, same offsets).
fn undo_legs(cli: &Args, header: &BackupHeader) -> anyhow::Result<Vec<LegSpec>> {
    let recorded = header.legs.iter().map(|l| LegSpec {
        path: l.id.path.clone().into(),
        offset: l.offset,
    });
    if cli.legs.is_empty() {
        return Ok(recorded.collect());
    }
    let given = cli
        .legs
        .iter()
        .map(|s| LegSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .on_file(&cli.log)?;
    if given.len() != header.legs.len() {
        return Err(file_error(
            &cli.log,
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
    Ok(given)
}

/// The end of a run: what a signal left, or the outcome, or the error on the file it is
/// about.
fn finish(
    cli: &Args,
    io: &dyn ByteIo,
    result: Result<Outcome, LogError>,
    unfinished: &str,
) -> anyhow::Result<(u8, Option<Outcome>)> {
    if let Some(status) = interrupt::after_write(&cli.log, &result, unfinished) {
        return Ok((status, result.ok()));
    }
    let outcome = result.map_err(|e| explain(cli, io, e))?;
    Ok((EXIT_OK, Some(outcome)))
}

/// The JSON report on stdout: one object with the log (unknown after a usage error), the
/// steps and the outcome, and what went wrong (as the error line says it) when the run
/// failed.
fn print_json(
    log: Option<String>,
    steps: &[String],
    outcome: Option<&Outcome>,
    error: Option<String>,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let (outcome, bytes) = match outcome {
        None => ("failed", None),
        Some(Outcome::Unchanged) => ("unchanged", None),
        Some(Outcome::DryRun) => ("dry-run", None),
        Some(Outcome::Written { bytes }) => ("written", Some(*bytes)),
    };
    Object::begin(&mut out)?
        .field("log", log)?
        .field("outcome", outcome)?
        .field("bytes_written", bytes)?
        .list("steps", steps)?
        .field("error", error)?
        .end()?;
    writeln!(out)
}
