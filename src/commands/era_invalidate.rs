//! era_invalidate's command line.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// `--format`: how the blocks are listed.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// blocks element of range and block elements, as thin-provisioning-tools writes it
    Xml,
    /// One "BEGIN END" line per run
    Text,
    /// One object: written_since, units, block_size_sectors, nr_blocks and ranges, a list of
    /// {"begin":B,"end":E}
    Json,
}

/// `--units`: the unit of text and JSON ranges.
#[derive(Clone, Copy, ValueEnum)]
pub enum UnitsArg {
    /// Origin blocks
    Blocks,
    /// 512-byte sectors
    Sectors,
    /// Bytes
    Bytes,
}

/// The arguments of era_invalidate.
#[derive(Parser)]
#[command(
    name = "era_invalidate",
    version,
    about = "List the origin blocks written since an era",
    long_about = "List the origin blocks written in era N or later: the blocks a cache must \
invalidate, or an incremental backup must copy. Reads the era array, the archived writesets \
and, from block 0, the current writeset, so blocks written in the current era of a live or \
crashed target are included. With --metadata-snapshot the held metadata snapshot of a live \
target is read instead; it covers the eras before the one current when it was taken.",
    after_help = "Output (end-exclusive ranges):
  xml   <blocks><range begin=\"B\" end=\"E\"/><block block=\"B\"/></blocks>,
        as thin-provisioning-tools
  text  one \"BEGIN END\" line per run
  json  {\"written_since\":N,\"units\":…,\"block_size_sectors\":…,
         \"nr_blocks\":…,\"past_current_era\":false,
         \"ranges\":[{\"begin\":B,\"end\":E}]}
The last range may extend past the end of the origin when its last block is
partial. An era past the metadata's current era lists nothing and is warned
about.

Examples:
  era_invalidate --written-since 5 /dev/vg/era-meta
a live target, by hand:
  dmsetup message era0 0 take_metadata_snap
  era_invalidate --metadata-snapshot --written-since 5 \\
      --format text --units bytes /dev/vg/era-meta
  dmsetup message era0 0 drop_metadata_snap
all of the above in one step:
  era_invalidate --live era0 --checkpoint --written-since 5 --units bytes

--live prints JSON unless --format says otherwise; its next_written_since is the
value for the next incremental run."
)]
pub struct Args {
    /// INPUT, or --live with --checkpoint and --use-held-snapshot
    #[command(flatten)]
    pub source: super::Source,
    /// List the blocks written in this era or later (0 lists every block)
    #[arg(long, value_name = "ERA")]
    pub written_since: u32,
    /// Read the held metadata snapshot of a live target (the device is opened without O_EXCL)
    #[arg(long, visible_alias = "metadata-snap", conflicts_with = "live")]
    pub metadata_snapshot: bool,
    /// Write to FILE instead of stdout
    ///
    /// FILE may not be the input. A regular FILE is written under a temporary name beside it
    /// and renamed over it only on success, so a failed run leaves it as it was; a device,
    /// FIFO or /dev/stdout is written in place. - is stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format [default: xml, json with --live]
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Units of the ranges (text and json only; xml is always in blocks)
    ///
    /// Sectors and bytes come from the block size recorded in the superblock. The last range
    /// may extend past the end of the origin when its last block is partial.
    #[arg(long, value_enum, default_value = "blocks")]
    pub units: UnitsArg,
    /// Print nothing on stderr; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
}

parse_with_bare_version!(Args);
