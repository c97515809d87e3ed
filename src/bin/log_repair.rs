//! log_repair: rewrite the header or the clean bits of a dm-log disk dirty log, or
//! resynchronise the mirror legs offline.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{ArgGroup, CommandFactory, Parser};
use indicatif::ProgressBar;

use era_log_tools::cli::interrupt::{self, Guarded};
use era_log_tools::cli::open::{advice, check_target};
use era_log_tools::cli::{byte_progress, run, say, EXIT_OK};
use era_log_tools::identify::Family;
use era_log_tools::log::device::{logical_block_size, open};
use era_log_tools::log::repair::parse_ranges;
use era_log_tools::log::resync::{open_legs, Leg, LegSpec};
use era_log_tools::log::run::{repair as run_repair, Mode, Progress, RepairOptions};
use era_log_tools::log::LogError;
use era_log_tools::pdata::io::ByteIo;
use era_log_tools::pdata::io::OpenMode;

const EXAMPLES: &str = "\
Examples:
  log_repair --force-resync --dry-run /dev/vg/lv_mlog
      show what a full resync at the next activation would take (nothing is written)
  log_repair --rewrite-header --nr-regions 2048 --backup log.bak /dev/vg/lv_mlog
      fix a damaged header (bad version or nr_regions); the bits are kept
  log_repair --resync --region-size 1024 --length 2097152 \\
             --leg /dev/sdb1 --leg /dev/sdc1:2048 /dev/sdd1
      copy every dirty region from leg 0 to the other legs, then mark them clean
  log_repair --verify --region-size 1024 --leg /dev/sdb1 --leg /dev/sdc1 /dev/sdd1
      mark clean the dirty regions whose content is the same on every leg

Every mode writes only the first buf_size bytes of the log (header, header area, bitmap),
in one O_DIRECT write followed by fsync, with version 2 in the header. The mirror must be
inactive (on every cluster node): block devices are opened O_EXCL. --backup FILE saves the
bytes about to be overwritten as a raw copy; put it back with
  dd if=FILE of=LOG bs=$(stat -c %s FILE) count=1 conv=notrunc,fsync oflag=direct";

/// Repair a dm-log "disk" dirty log (the region log of the device-mapper mirror target).
#[derive(Parser)]
#[command(name = "log_repair", version, after_help = EXAMPLES)]
#[command(group(ArgGroup::new("mode").required(true).multiple(false).args([
    "rewrite_header", "force_resync", "clear_stray_bits", "resync", "verify", "mark_clean",
])))]
struct Cli {
    /// Rewrite the header {MiRr, 2, nr_regions}; the bits are kept. nr_regions comes from
    /// --nr-regions, from --region-size with --length, or stays as it is.
    #[arg(long)]
    rewrite_header: bool,
    /// Mark every region dirty: the kernel resynchronises the whole mirror at the next
    /// activation. Always safe.
    #[arg(long)]
    force_resync: bool,
    /// Clear the bits past the last region (the kernel does it anyway at activation).
    #[arg(long)]
    clear_stray_bits: bool,
    /// Offline resync: copy each dirty region from leg 0 to every other leg, fsync the legs,
    /// then mark those regions clean. Needs --region-size and the legs in table order.
    #[arg(long, requires_all = ["region_size", "legs"])]
    resync: bool,
    /// Compare each dirty region across the legs; mark clean those identical on every leg,
    /// report the others. Needs --region-size and the legs in table order.
    #[arg(long, requires_all = ["region_size", "legs"])]
    verify: bool,
    /// Mark RANGES clean (BEGIN..END end exclusive, or N, comma-separated). Unsafe unless the
    /// legs are known identical there: needs --unsafe-legs-identical.
    #[arg(long, value_name = "RANGES", requires = "unsafe_legs_identical")]
    mark_clean: Option<String>,
    /// Confirms that the legs hold the same data in the --mark-clean ranges.
    #[arg(long, requires = "mark_clean")]
    unsafe_legs_identical: bool,
    /// Region count to write into the header (--rewrite-header, --force-resync).
    #[arg(long, value_name = "N", conflicts_with_all = ["clear_stray_bits", "resync", "verify", "mark_clean"])]
    nr_regions: Option<u64>,
    /// Region size of the mirror in sectors.
    #[arg(long, value_name = "SECTORS")]
    region_size: Option<u64>,
    /// Length of the mirror in sectors (default: nr_regions × region size).
    #[arg(long, value_name = "SECTORS", requires = "region_size")]
    length: Option<u64>,
    /// A mirror leg, in table order (leg 0 is the source), with its offset in sectors.
    #[arg(long = "leg", value_name = "PATH[:OFFSET]")]
    legs: Vec<String>,
    /// Logical block size of the log device in bytes (default: the device's, else 512).
    #[arg(long, value_name = "BYTES")]
    logical_block_size: Option<u32>,
    /// Print what would change; write nothing (legs included).
    #[arg(long)]
    dry_run: bool,
    /// Save the bytes about to be overwritten to FILE (a new file; raw copy).
    #[arg(long, value_name = "FILE")]
    backup: Option<PathBuf>,
    /// Repair a device that does not carry the disk-log magic.
    #[arg(long)]
    force: bool,
    /// The log is a clustered-disk log of cmirrord (warns about host byte order).
    #[arg(long)]
    clustered: bool,
    /// The log device or image.
    log: PathBuf,
}

fn usage_error(msg: &str) -> ! {
    Cli::command()
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
    let cli = Cli::parse();
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

fn repair(cli: &Cli) -> anyhow::Result<u8> {
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
