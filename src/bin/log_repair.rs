//! log_repair: rewrite the header or the clean bits of a dm-log disk dirty log, or
//! resynchronise the mirror legs offline.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use indicatif::ProgressBar;

use era_log_tools::cli::open::{advice, check_target, open_log};
use era_log_tools::cli::report::{file_error, OnFileExt};
use era_log_tools::cli::{byte_progress, run_quiet, say, EXIT_OK};
use era_log_tools::commands::log_repair::Args;
use era_log_tools::commands::ReportFormat;
use era_log_tools::identify::Family;
use era_log_tools::interrupt::{self, Guarded};
use era_log_tools::json::Object;
use era_log_tools::log::device::logical_block_size;
use era_log_tools::log::repair::parse_ranges;
use era_log_tools::log::resync::{open_legs, Leg, LegSpec};
use era_log_tools::log::run::{repair as run_repair, Mode, Outcome, Progress, RepairOptions};
use era_log_tools::log::LogError;
use era_log_tools::pdata::io::{ByteIo, OpenMode};

fn usage_error(msg: &str) -> ! {
    Args::command()
        .error(clap::error::ErrorKind::ArgumentConflict, msg)
        .exit()
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

fn main() -> ExitCode {
    let cli = Args::parse();
    let with_legs = cli.resync || cli.verify;
    if !cli.legs.is_empty() && !with_legs {
        usage_error("--leg is only used by --resync and --verify");
    }
    if with_legs && cli.legs.len() < 2 {
        usage_error("a mirror has at least 2 legs: give --leg for each, in table order");
    }
    if !with_legs && cli.region_size.is_some() && cli.length.is_none() {
        usage_error("--region-size needs --length to give a region count");
    }
    run_quiet("log_repair", cli.quiet, || repair(&cli))
}

/// The state an interrupted repair leaves the log and the legs in.
const UNCHANGED: &str = "the log was not completely written: it is unchanged (a resync may \
have copied part of the dirty regions; they stay dirty, and a new run copies them again), or \
holds the new bits under its old header (written first when the header changes); run the \
repair again";

/// The error as the user sees it: about the log when it concerns the log, with what to do
/// about the header problems the options can fix.
fn explain(args: &Args, log: &dyn ByteIo, e: LogError) -> anyhow::Error {
    let hint = match e {
        LogError::BadMagic { .. } => {
            let advice = advice(log, Family::Log)
                .map(|a| format!("; {a}"))
                .unwrap_or_default();
            format!("{advice}; --force repairs it anyway")
        }
        LogError::BadVersion { .. } => {
            "; fix it first with --rewrite-header (or --force-resync)".into()
        }
        LogError::RegionCountMismatch { .. } => "; check --region-size and --length (if the \
            header's count is what is wrong, rewrite it with --rewrite-header --nr-regions N)"
            .into(),
        ref e if e.names_its_subject() => return anyhow::anyhow!("{e}"),
        _ => String::new(),
    };
    file_error(&args.log, format!("{e}{hint}"))
}

fn repair(cli: &Args) -> anyhow::Result<u8> {
    let name = cli.log.display().to_string();
    interrupt::writing_to(&name);
    if cli.clustered && !cli.quiet {
        say(&format!(
            "log_repair: {name}: warning: log: clustered-disk log (cmirrord): treated as a kernel \
             disk log, which is right only if it was written on a little-endian host; no \
             cluster node may have the mirror active"
        ));
    }
    let specs = cli
        .legs
        .iter()
        .map(|s| LegSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mark = cli.mark_clean.as_deref().map(parse_ranges).transpose()?;
    let mode = if cli.dry_run {
        OpenMode::ReadExclusive
    } else {
        OpenMode::Write
    };
    let io = open_log(&cli.log, mode)?;
    let lbs = logical_block_size(&cli.log, cli.logical_block_size).on_file(&cli.log)?;
    check_target(&io, &cli.log, Family::Log, cli.force)?;
    let opened = open_legs(&specs, &cli.log, cli.resync && !cli.dry_run)?;
    let guarded: Vec<_> = opened.iter().map(|l| Guarded::new(&l.io)).collect();
    let legs: Vec<Leg> = opened
        .iter()
        .zip(&guarded)
        .map(|(l, g)| Leg {
            io: g,
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
        backup: cli.backup.as_deref(),
    };
    let mut report = Vec::new();
    let mut bar = Bar {
        bar: ProgressBar::hidden(),
        quiet: cli.quiet,
    };
    let result = run_repair(&Guarded::new(&io), &opts, &mut bar, &mut report);
    // What was done before an error is reported too.
    print_report(cli, &report, result.as_ref().ok())?;
    if let Some(status) = interrupt::after_write(&cli.log, &result, UNCHANGED) {
        return Ok(status);
    }
    result.map_err(|e| explain(cli, &io, e))?;
    Ok(EXIT_OK)
}

/// The report on stdout: a line per step (`log_repair: LOG: step`), or one JSON object with
/// the steps and the outcome.
fn print_report(cli: &Args, steps: &[String], outcome: Option<&Outcome>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let name = cli.log.display().to_string();
    if cli.format == ReportFormat::Text {
        for step in steps {
            writeln!(out, "log_repair: {name}: {step}")?;
        }
        return Ok(());
    }
    let (outcome, bytes) = match outcome {
        None => ("failed", None),
        Some(Outcome::Unchanged) => ("unchanged", None),
        Some(Outcome::DryRun) => ("dry-run", None),
        Some(Outcome::Written { bytes }) => ("written", Some(*bytes)),
    };
    Object::begin(&mut out)?
        .field("log", name)?
        .field("outcome", outcome)?
        .field("bytes_written", bytes)?
        .list("steps", steps)?
        .end()?;
    writeln!(out)
}
