//! era_check's command line.

use std::path::PathBuf;

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
    after_help = "Exit status: 0 clean (warnings only), 1 errors found (non-fatal ones too, \
unless --ignore-non-fatal-errors), 2 usage error.

Examples:
  era_check /dev/vg/era-meta
  era_check -q era-meta.img && echo clean
  era_check --metadata-snap /dev/vg/era-meta     # a live device, through its held snapshot
  era_check --live era0                          # take, check and drop a snapshot of a live target"
)]
pub struct Args {
    /// Metadata device or file
    #[arg(
        value_name = "INPUT",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub live: super::LiveArgs,
    /// Fail only on fatal errors (leaks, stray bits and similar are still reported)
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
}

parse_with_bare_version!(Args);
