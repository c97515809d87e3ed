//! log_repair: its command line and its run. The command line is read into a
//! [plan](mod@plan) before anything is opened; the run (`run.rs`) reports its steps
//! (`report.rs`) and its errors (`explain.rs`).

mod explain;
pub mod plan;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser};

use self::plan::{plan, Plan};
use self::report::{lost_report, print_json, usage_json, Report};
use crate::cli::report::error_message;
use crate::cli::{run_quiet, EXIT_OK};

// Example commands stay under 40 columns, continued with `\`: clap wraps this text at the
// terminal's width, and a command cut in two would not paste (tests/log_help.rs).
const EXAMPLES: &str = "\
Examples:
  log_repair --force-resync --dry-run \\
    /dev/vg/lv_mlog
      what a full resync at the next activation would take; nothing is written
  log_repair --rewrite-header \\
    --nr-regions 2048 \\
    --backup log.bak /dev/vg/lv_mlog
      fix a damaged header (bad version or nr_regions); the bits are kept
  log_repair --resync \\
    --region-size 1024 \\
    --length 2097152 \\
    --leg /dev/sdb1 \\
    --leg /dev/sdc1:2048 \\
    --backup log.bak /dev/sdd1
      copy every dirty region from leg 0 to the other legs, then mark them clean
  log_repair --verify \\
    --region-size 1024 \\
    --length 2097152 \\
    --leg /dev/sdb1 --leg /dev/sdc1 \\
    /dev/sdd1
      mark clean the dirty regions whose content is the same on every leg
  log_repair --undo log.bak /dev/sdd1
      put back everything the run with --backup log.bak overwrote, log and legs

--resync, --verify and --mark-clean take the mirror's geometry from you, never
from a guess: the region size and the length in sectors, as `dmsetup table`
shows them (the mirror line is START LENGTH mirror disk 2 LOG_DEVICE
REGION_SIZE ...) or as `lvs -o +regionsize,size VG/LV` does (in sectors with
lvs's units set to s). They are checked against the log's region count and the
legs' sizes.

Every mode writes only the first buf_size bytes of the log (header, header
area, bitmap), in one O_DIRECT write followed by fsync, with version 2 in the
header. The mirror must be inactive (on every cluster node): block devices are
opened O_EXCL. --backup FILE saves, before the first write, everything the run
overwrites: the log's bytes and, for --resync, the dirty regions of the legs
it copies to; --undo FILE puts them back.";

/// Repair a dm-log "disk" dirty log (the region log of the device-mapper mirror target).
#[derive(Parser)]
#[command(name = "log_repair", version, after_help = EXAMPLES)]
#[command(group(ArgGroup::new("mode").required(true).multiple(false).args([
    "rewrite_header", "force_resync", "clear_stray_bits", "resync", "verify", "mark_clean", "undo",
])))]
pub struct Args {
    /// Rewrite the header {MiRr, 2, nr_regions}; the bits are kept. nr_regions comes from
    /// --nr-regions, from --region-size with --length, or stays as it is.
    ///
    /// Fixes a bad version or region count. Safe if the bits are trustworthy.
    #[arg(long, help_heading = "Modes")]
    pub rewrite_header: bool,
    /// Mark every region dirty: the kernel resynchronises the whole mirror at the next
    /// activation. Always safe.
    ///
    /// The bits past the last region are cleared too. The same as activating the mirror once
    /// with "sync".
    #[arg(long, help_heading = "Modes")]
    pub force_resync: bool,
    /// Clear the bits past the last region (the kernel does it anyway at activation).
    ///
    /// Only the bitmap's last 64-bit word can hold such bits: a cosmetic repair.
    #[arg(long, help_heading = "Modes")]
    pub clear_stray_bits: bool,
    /// Offline resync: copy each dirty region from leg 0 to every other leg, fsync the legs,
    /// then mark those regions clean. Needs --region-size, --length and the legs in table
    /// order.
    ///
    /// The last region is copied only up to the mirror's length. Clean regions are never
    /// written, nor is leg 0. On a terminal a progress bar shows the throughput.
    #[arg(long, requires_all = ["region_size", "length", "legs"], help_heading = "Modes")]
    pub resync: bool,
    /// Compare each dirty region across the legs; mark clean those identical on every leg,
    /// report the others. Needs --region-size, --length and the legs in table order.
    ///
    /// No leg is written; the regions that differ stay dirty.
    #[arg(long, requires_all = ["region_size", "length", "legs"], help_heading = "Modes")]
    pub verify: bool,
    /// Mark RANGES clean (BEGIN..END end exclusive, or N, comma-separated). Unsafe unless the
    /// legs are known identical there: needs --unsafe-legs-identical, --region-size and
    /// --length.
    #[arg(
        long,
        value_name = "RANGES",
        requires_all = ["unsafe_legs_identical", "region_size", "length"],
        help_heading = "Modes"
    )]
    pub mark_clean: Option<String>,
    /// Put back what a run with --backup FILE overwrote: the log's bytes and the legs'.
    ///
    /// The legs are the ones FILE names, unless --leg gives them (all, in table order, with
    /// the same offsets). Everything is checked before the first write: FILE's checksums,
    /// each device's size and identity (device number, or inode of a file), and that each
    /// range still holds what the run wrote. The log is written back and flushed first, then
    /// the legs. --force accepts another identity or changed bytes, never another size.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["backup", "region_size", "length", "nr_regions"],
        help_heading = "Modes"
    )]
    pub undo: Option<PathBuf>,
    /// Confirms that the legs hold the same data in the --mark-clean ranges.
    #[arg(long, requires = "mark_clean")]
    pub unsafe_legs_identical: bool,
    /// Region count to write into the header (--rewrite-header, --force-resync).
    #[arg(long, value_name = "N", conflicts_with_all = ["clear_stray_bits", "resync", "verify", "mark_clean"])]
    pub nr_regions: Option<u64>,
    /// Region size of the mirror in sectors, from its table (dmsetup table: the disk log's
    /// 2nd argument).
    #[arg(long, value_name = "SECTORS", requires = "length")]
    pub region_size: Option<u64>,
    /// Length of the mirror in sectors, from its table (dmsetup table: the 2nd field).
    ///
    /// Each leg must hold that many sectors past its offset; a leg may be larger (a raw
    /// partition).
    #[arg(long, value_name = "SECTORS", requires = "region_size")]
    pub length: Option<u64>,
    /// A mirror leg, in table order (leg 0 is the source), with its offset in sectors.
    ///
    /// The offset defaults to 0. Give --leg once for each leg; a mirror has at least 2.
    /// With --undo, the legs to put back in place of those the backup names.
    #[arg(long = "leg", value_name = "PATH[:OFFSET]")]
    pub legs: Vec<String>,
    /// Logical block size of the log device in bytes (default: the device's, else 512).
    #[arg(long, value_name = "BYTES")]
    pub logical_block_size: Option<u32>,
    /// Print what would change; write nothing (legs included).
    ///
    /// The header fields that would change, and the bits set and cleared, as ranges.
    #[arg(long)]
    pub dry_run: bool,
    /// Save everything the run overwrites to FILE (a new file), for --undo.
    ///
    /// The log's first buf_size bytes and, for --resync, every dirty region on each leg it
    /// copies to, with the devices' paths, sizes and identities, each part checksummed
    /// (docs/dirty-log-format.md). Its size is printed first; it is written and synced, and
    /// so is its directory, before anything else is written. An existing FILE is never
    /// overwritten.
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,
    /// Repair a device that does not carry the disk-log magic.
    ///
    /// For recreating a log on a device that holds something else or nothing. Without it,
    /// a device that holds a filesystem, dm-era metadata, LVM, LUKS, swap or a partition
    /// table is refused. With --undo: put the backup back onto devices of the right sizes
    /// whose identity or content differs from what the backup expects.
    #[arg(long)]
    pub force: bool,
    /// The log is a clustered-disk log of cmirrord (warns about host byte order).
    ///
    /// Such a log is handled correctly only if it was written on a little-endian host; no
    /// cluster node may have the mirror active.
    #[arg(long)]
    pub clustered: bool,
    /// The log device or image.
    pub log: PathBuf,
    /// Print nothing on stderr; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
    /// Report format: text (one line per step on stdout) or json (one object on stdout,
    /// also when the run fails: outcome "failed" and the error)
    #[arg(long, value_enum, default_value_t = super::ReportFormat::Text)]
    pub format: super::ReportFormat,
}

parse_with_bare_version!(Args);

/// log_repair on the process's arguments; usage errors end the process (exit status 2).
pub fn main() -> ExitCode {
    let args = super::parse_with::<Args>(&usage_json);
    let plan = plan(&args).unwrap_or_else(|msg| super::usage_error_with::<Args>(msg, &usage_json));
    run(&args, plan)
}

/// Repairs the log, or undoes a repair, as `plan` says; the exit status tells the outcome.
pub fn run(args: &Args, plan: Plan) -> ExitCode {
    let mut report = Report {
        name: args.log.display().to_string(),
        text: args.format == super::ReportFormat::Text,
        steps: Vec::new(),
        lost: None,
    };
    run_quiet("log_repair", args.quiet, || {
        // The report goes to stdout as the run goes: a closed stdout is refused first.
        crate::cli::output::require_stdout()?;
        let result = run::run(args, plan, &mut report);
        if args.format == super::ReportFormat::Json {
            let error = result.as_ref().err().map(error_message);
            let outcome = result.as_ref().ok().and_then(|(_, o)| o.as_ref());
            let printed = print_json(
                Some(args.log.display().to_string()),
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
            (Some(e), Some(outcome)) if status == EXIT_OK => Err(lost_report(args, e, outcome)),
            _ => Ok(status),
        }
    })
}
