//! era_dump's command line.

use std::path::PathBuf;

use clap::Parser;

/// The arguments of era_dump.
#[derive(Parser)]
#[command(
    name = "era_dump",
    version,
    about = "Dump dm-era metadata as XML",
    long_about = "Dump dm-era metadata as XML: the superblock, every writeset (one <bit> per \
origin block) in ascending era, then the era array. The output is byte for byte what \
thin-provisioning-tools 1.3.3 writes, and era_restore reads it back.",
    after_help = "Exit status: 0 success, 1 error, 2 usage error.

Examples:
  era_dump /dev/vg/era-meta > era.xml
  era_dump -o era.xml era-meta.img
the era of every block, writesets folded in:
  era_dump --logical era-meta.img
salvage damaged metadata into a new device or file:
  era_dump --repair damaged.img > salvaged.xml &&
    era_restore -i salvaged.xml -o new.img
a live device, through its held snapshot:
  era_dump --metadata-snap /dev/vg/era-meta
take, dump and drop a snapshot of a live target:
  era_dump --live era0 -o era0.xml"
)]
pub struct Args {
    /// INPUT, or --live with --checkpoint and --use-held-snapshot
    #[command(flatten)]
    pub source: super::Source,
    /// Fold every writeset into the era array (newest writeset wins) and print only the
    /// era array
    ///
    /// Each block gets the era of the newest writeset that marks it, or else its era-array
    /// value: the era array as it will be once the kernel has digested every writeset.
    /// (thin-provisioning-tools 1.3.3 attributes bit j of 64-bit word i to block 32i+j here;
    /// this tool does not.)
    #[arg(long)]
    pub logical: bool,
    /// Dump the held metadata snapshot; the device is opened without O_EXCL so that a live
    /// target's metadata can be read
    ///
    /// Only the snapshot's writeset tree and era array are read (its copies of the current
    /// writeset and of the space map are stale). Fails with "no current metadata snap" when
    /// none is held.
    #[arg(long, visible_alias = "metadata-snapshot", conflicts_with = "live")]
    pub metadata_snap: bool,
    /// Write the XML to FILE instead of stdout
    ///
    /// FILE may not be the input. A regular FILE is written under a temporary name beside it
    /// and renamed over it only on success, so a failed run leaves it as it was; a device,
    /// FIFO or /dev/stdout is written in place. - is stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Skip what cannot be read, report it on stderr, and still write XML that era_restore
    /// accepts (unreadable writeset words count as written, unreadable era-array entries
    /// as the current era)
    ///
    /// Era-array values above the current era are lowered to it, and writesets that cannot
    /// be restored (a repeated era, an era above the current one, a zero root) are left out.
    /// Marking too much is safe for every user of era data (a backup copies a block too many,
    /// a cache drops a block too many); marking too little is not. The superblock must be
    /// valid.
    #[arg(short, long)]
    pub repair: bool,
    /// Print nothing on stderr; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
}

parse_with_bare_version!(Args);
