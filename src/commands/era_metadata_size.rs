//! era_metadata_size's command line.

use clap::{Parser, ValueEnum};

use crate::era::metadata_size::SizeUnits;

/// `--format`: the size alone, or with its parts.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// The size and its unit
    Text,
    /// The size and its parts, in metadata blocks
    Json,
}

/// The arguments of era_metadata_size.
#[derive(Parser)]
#[command(
    name = "era_metadata_size",
    version,
    about = "Size the metadata device of a dm-era target",
    long_about = "Print the size of the metadata device to create for an era target: room for \
the era array, the current writeset and WRITESETS archived writesets waiting to be digested \
into the era array, the writeset tree and the space map, plus what one metadata transaction \
copies (a second era array, as digestion or a held metadata snapshot keeps one) and the \
snapshot's superblock. The formula is in era_metadata_size(8).",
    after_help = "Exit status: 0 success, 1 impossible geometry, 2 usage error.

Examples:
  era_metadata_size --origin-size 1T --block-size 128 --writesets 8 --units mib
  size=$(era_metadata_size -n --origin-size 1T --block-size 128 \\
      --writesets 8 --units mib)
  lvcreate -n era-meta -L \"${size}m\" vg
  era_metadata_size --nr-blocks 2097152 --writesets 300 --format json"
)]
pub struct Args {
    /// Origin blocks (the last one may be partial)
    #[arg(long, value_name = "N", required_unless_present = "origin_size", conflicts_with_all = ["origin_size", "block_size"])]
    pub nr_blocks: Option<u64>,
    /// Origin size: bytes, or with a suffix s (sectors), k, m, g, t, p (powers of 1024)
    #[arg(long, value_name = "SIZE", requires = "block_size", value_parser = origin_size)]
    pub origin_size: Option<u64>,
    /// Origin block size in 512-byte sectors, as in the era table line
    #[arg(long, value_name = "SECTORS")]
    pub block_size: Option<u64>,
    /// Archived writesets that may wait to be digested at the same time (each checkpoint
    /// archives one; a live backup run with --checkpoint archives two)
    #[arg(long, value_name = "W")]
    pub writesets: u64,
    /// Units of the answer, rounded up
    #[arg(short, long, value_enum, default_value = "bytes")]
    pub units: SizeUnits,
    /// Print the number only
    #[arg(short = 'n', long)]
    pub numeric_only: bool,
    /// text: the size; json: the size and its parts, in metadata blocks
    #[arg(long, value_enum, default_value = "text")]
    pub format: FormatArg,
    /// Print nothing on stderr; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
}

parse_with_bare_version!(Args);

/// `--origin-size`, read by clap so that a value it cannot read is a usage error (exit 2),
/// like every other value no tool can parse.
fn origin_size(s: &str) -> Result<u64, String> {
    crate::era::metadata_size::parse_size(s).map_err(|_| {
        "not a size: give bytes, or a number with s (sectors), k, m, g, t or p".to_string()
    })
}
