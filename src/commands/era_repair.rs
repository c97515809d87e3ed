//! era_repair's command line.

use std::path::PathBuf;

use clap::Parser;

/// The arguments of era_repair.
#[derive(Parser)]
#[command(
    name = "era_repair",
    version,
    about = "Repair dm-era metadata into a new device or file",
    long_about = "Repair dm-era metadata: read what can be read from INPUT (whose superblock \
must be valid), report what cannot, and write fresh, consistent metadata to OUTPUT. The same \
as era_dump --repair piped into era_restore, without the XML. Unreadable writeset words \
count as written in their era and unreadable era-array entries as the current era, so no \
block is ever reported as unchanged when it may have changed.",
    after_help = "Exit status: 0 success, 1 error, 2 usage error.

Examples:
  era_repair -i /dev/vg/era-meta -o /dev/vg/era-meta-new
  truncate -s 64M fixed.img &&
    era_repair -i damaged.img -o fixed.img && era_check fixed.img"
)]
pub struct Args {
    /// Damaged metadata device or file
    ///
    /// Opened read-only, and with O_EXCL when it is a block device.
    #[arg(short, long, value_name = "FILE")]
    pub input: PathBuf,
    /// Another device or pre-allocated file receiving the repaired metadata
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Print nothing; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
    /// Write even over what is neither zeros nor dm-era metadata of the same geometry
    ///
    /// Without it the output is refused when it holds another target's metadata (another
    /// block size or nr_blocks), damaged dm-era metadata, a filesystem, LVM, LUKS, swap, a
    /// partition table, a disk log, or data that is neither zeros nor a signature we know.
    #[arg(long)]
    pub force: bool,
}

parse_with_bare_version!(Args);
