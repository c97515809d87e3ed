//! era_check's command line.

use clap::Parser;

/// The arguments of era_check.
#[derive(Parser)]
#[command(
    name = "era_check",
    version,
    about = "Validate dm-era metadata on a device or file",
    long_about = "Validate dm-era metadata: the superblock, the writeset tree and every \
writeset, the current writeset, the era array, the held metadata snapshot and the reference \
count of every block against the metadata space map.",
    after_help = "Exit status: 0 clean (notes only), 1 errors or warnings found (warnings
are the non-fatal errors --ignore-non-fatal-errors lets pass), 2 usage error.

Examples:
  era_check /dev/vg/era-meta
  era_check -q era-meta.img && echo clean
  era_check --format json era-meta.img | jq -r '.findings[].message'
a live device, through its held snapshot:
  era_check --metadata-snap /dev/vg/era-meta
take, check and drop a snapshot of a live target:
  era_check --live era0"
)]
pub struct Args {
    /// INPUT, or --live with --checkpoint and --use-held-snapshot
    #[command(flatten)]
    pub source: super::Source,
    /// Fail only on errors: warnings (leaks, stray bits and similar) are still reported
    #[arg(long)]
    pub ignore_non_fatal_errors: bool,
    /// Check only the held metadata snapshot; the device is opened without O_EXCL so that a
    /// live target's metadata can be read
    ///
    /// The snapshot is the superblock at block 0's metadata_snap, its writeset tree and its
    /// era array. A superblock read with a bad checksum is read again a few times, as a live
    /// target may be rewriting it. Fails with "no current metadata snap" when none is held.
    #[arg(long, visible_alias = "metadata-snapshot", conflicts_with = "live")]
    pub metadata_snap: bool,
    /// Print nothing; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
    /// Check the superblock only
    #[arg(long)]
    pub super_block_only: bool,
    /// Report format: text (one line per finding on stderr) or json (one object on stdout)
    #[arg(long, value_enum, default_value_t = super::ReportFormat::Text)]
    pub format: super::ReportFormat,
}

parse_with_bare_version!(Args);
