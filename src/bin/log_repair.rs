//! log_repair: rewrite the header or the clean bits of a dm-log disk dirty log, or
//! resynchronise the mirror legs offline.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::CommandFactory;
use indicatif::ProgressBar;

use era_log_tools::cli::{byte_progress, run, EXIT_OK};
use era_log_tools::commands::log_repair::Args;
use era_log_tools::log::device::{logical_block_size, open};
use era_log_tools::log::repair::parse_ranges;
use era_log_tools::log::resync::{open_legs, Leg, LegSpec, OpenLeg};
use era_log_tools::log::run::{repair as run_repair, Mode, Progress, RepairOptions};
use era_log_tools::log::LogError;
use era_log_tools::pdata::io::OpenMode;

fn usage_error(msg: &str) -> ! {
    Args::command()
        .error(clap::error::ErrorKind::ArgumentConflict, msg)
        .exit()
}

/// The progress bar of a leg pass, shown only on a terminal.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn begin(&mut self, total: u64) {
        self.0 = byte_progress(total, false);
    }

    fn advance(&mut self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn end(&mut self) {
        self.0.finish_and_clear();
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
    if (cli.rewrite_header || cli.force_resync) && cli.region_size.is_some() && cli.length.is_none()
    {
        usage_error("--region-size needs --length to give a region count");
    }
    run("log_repair", || repair(&cli))
}

/// The error as the user sees it: the log's name in front of what concerns the log, and
/// what to do about the header problems the options can fix.
fn explain(name: &str, e: LogError) -> anyhow::Error {
    match e {
        LogError::BadMagic { .. } => anyhow!("{name}: {e}; --force repairs it anyway"),
        LogError::BadVersion { .. } => {
            anyhow!("{name}: {e}; fix it first with --rewrite-header (or --force-resync)")
        }
        LogError::RegionCountMismatch { .. } => anyhow!(
            "{name}: {e}; check --region-size/--length, or fix the header first with \
             --rewrite-header"
        ),
        e if e.names_its_subject() => e.into(),
        e => anyhow::Error::new(e).context(name.to_string()),
    }
}

fn repair(cli: &Args) -> anyhow::Result<u8> {
    let name = cli.log.display().to_string();
    if cli.clustered {
        eprintln!(
            "log_repair: warning: {name}: clustered-disk log (cmirrord): treated as a kernel disk \
             log, which is right only if it was written on a little-endian host; no cluster node \
             may have the mirror active"
        );
    }
    let specs = cli
        .legs
        .iter()
        .map(|s| LegSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mark = cli.mark_clean.as_deref().map(parse_ranges).transpose()?;

    let lbs = logical_block_size(&cli.log, cli.logical_block_size).context(name.clone())?;
    let mode = if cli.dry_run {
        OpenMode::ReadExclusive
    } else {
        OpenMode::Write
    };
    let io = open(&cli.log, mode).context(name.clone())?;
    let opened = open_legs(&specs, &cli.log, cli.resync && !cli.dry_run)?;
    let legs: Vec<Leg> = opened.iter().map(OpenLeg::as_leg).collect();
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
    let result = run_repair(&io, &opts, &mut Bar(ProgressBar::hidden()), &mut report);
    // What was done before an error is reported too.
    let mut stdout = std::io::stdout().lock();
    for line in &report {
        writeln!(stdout, "{name}: {line}")?;
    }
    result.map_err(|e| explain(&name, e))?;
    Ok(EXIT_OK)
}
