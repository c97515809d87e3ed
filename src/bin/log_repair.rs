//! log_repair: rewrite the header or the clean bits of a dm-log disk dirty log, or
//! resynchronise the mirror legs offline.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::CommandFactory;
use indicatif::ProgressBar;

use era_log_tools::cli::open::{advice, check_target};
use era_log_tools::cli::{byte_progress, run, say, EXIT_OK};
use era_log_tools::commands::log_repair::Args;
use era_log_tools::identify::Family;
use era_log_tools::interrupt::{self, Guarded};
use era_log_tools::log::device::{logical_block_size, open};
use era_log_tools::log::repair::parse_ranges;
use era_log_tools::log::resync::{open_legs, Leg, LegSpec};
use era_log_tools::log::run::{repair as run_repair, Mode, Progress, RepairOptions};
use era_log_tools::log::LogError;
use era_log_tools::pdata::io::ByteIo;
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
    if !with_legs && cli.region_size.is_some() && cli.length.is_none() {
        usage_error("--region-size needs --length to give a region count");
    }
    run("log_repair", || repair(&cli))
}

/// The state an interrupted repair leaves the log and the legs in.
const UNCHANGED: &str = "the log was not written and is unchanged (a resync may have copied \
part of the dirty regions; they stay dirty, and a new run copies them again)";

/// The error as the user sees it: the log's name in front of what concerns the log, and
/// what to do about the header problems the options can fix.
fn explain(name: &str, log: &dyn ByteIo, e: LogError) -> anyhow::Error {
    match e {
        LogError::BadMagic { .. } => {
            let advice = advice(log, Family::Log)
                .map(|a| format!("; {a}"))
                .unwrap_or_default();
            anyhow!("{name}: {e}{advice}; --force repairs it anyway")
        }
        LogError::BadVersion { .. } => {
            anyhow!("{name}: {e}; fix it first with --rewrite-header (or --force-resync)")
        }
        LogError::RegionCountMismatch { .. } => anyhow!(
            "{name}: {e}; check --region-size and --length (if the header's count is what is \
             wrong, rewrite it with --rewrite-header --nr-regions N)"
        ),
        e if e.names_its_subject() => e.into(),
        e => anyhow::Error::new(e).context(name.to_string()),
    }
}

fn repair(cli: &Args) -> anyhow::Result<u8> {
    let name = cli.log.display().to_string();
    interrupt::writing_to(&name);
    if cli.clustered {
        say(&format!(
            "log_repair: warning: {name}: clustered-disk log (cmirrord): treated as a kernel disk \
             log, which is right only if it was written on a little-endian host; no cluster node \
             may have the mirror active"
        ));
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
    let log = Guarded::new(&io);
    let result = run_repair(&log, &opts, &mut Bar(ProgressBar::hidden()), &mut report);
    // What was done before an error is reported too.
    let mut stdout = std::io::stdout().lock();
    for line in &report {
        writeln!(stdout, "{name}: {line}")?;
    }
    if let Some(status) = interrupt::after_write(&cli.log, &result, UNCHANGED) {
        return Ok(status);
    }
    result.map_err(|e| explain(&name, &io, e))?;
    Ok(EXIT_OK)
}
