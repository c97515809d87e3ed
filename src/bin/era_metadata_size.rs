//! era_metadata_size: how large to make an era target's metadata device.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::era::metadata_size::{nr_blocks, parse_size, size, SizeUnits};

#[derive(Clone, Copy, ValueEnum)]
enum UnitsArg {
    Bytes,
    Sectors,
    Blocks,
    Kib,
    Mib,
    Gib,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

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
  lvcreate -n era-meta -L $(era_metadata_size -n --origin-size 1T --block-size 128 --writesets 8 --units mib)m vg
  era_metadata_size --nr-blocks 2097152 --writesets 300 --format json"
)]
struct Args {
    /// Origin blocks (the last one may be partial)
    #[arg(long, value_name = "N", required_unless_present = "origin_size", conflicts_with_all = ["origin_size", "block_size"])]
    nr_blocks: Option<u64>,
    /// Origin size: bytes, or with a suffix s (sectors), k, m, g, t, p (powers of 1024)
    #[arg(long, value_name = "SIZE", requires = "block_size")]
    origin_size: Option<String>,
    /// Origin block size in 512-byte sectors, as in the era table line
    #[arg(long, value_name = "SECTORS")]
    block_size: Option<u64>,
    /// Archived writesets that may wait to be digested at the same time (each checkpoint
    /// archives one; a live backup run with --checkpoint archives two)
    #[arg(long, value_name = "W")]
    writesets: u64,
    /// Units of the answer, rounded up
    #[arg(short, long, value_enum, default_value = "bytes")]
    units: UnitsArg,
    /// Print the number only
    #[arg(short = 'n', long)]
    numeric_only: bool,
    /// text: the size; json: the size and its parts, in metadata blocks
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let units = match args.units {
        UnitsArg::Bytes => SizeUnits::Bytes,
        UnitsArg::Sectors => SizeUnits::Sectors,
        UnitsArg::Blocks => SizeUnits::Blocks,
        UnitsArg::Kib => SizeUnits::Kib,
        UnitsArg::Mib => SizeUnits::Mib,
        UnitsArg::Gib => SizeUnits::Gib,
    };
    cli::run("era_metadata_size", || {
        let n = match (args.nr_blocks, &args.origin_size, args.block_size) {
            (Some(n), _, _) => n,
            (None, Some(origin), Some(bs)) => nr_blocks(parse_size(origin)?, bs)?,
            _ => anyhow::bail!("give --nr-blocks, or --origin-size with --block-size"),
        };
        let s = size(n, args.writesets)?;
        let value = s.in_units(units);
        match args.format {
            FormatArg::Text if args.numeric_only => println!("{value}"),
            FormatArg::Text => println!("{value} {}", units.name()),
            FormatArg::Json => println!(
                "{{\"nr_blocks\":{},\"writesets\":{},\"size\":{value},\"units\":\"{}\",\
                 \"metadata_blocks\":{},\"committed_blocks\":{},\"headroom_blocks\":{},\
                 \"era_array_blocks\":{},\"writeset_blocks\":{},\"writeset_tree_blocks\":{},\
                 \"space_map_blocks\":{}}}",
                s.nr_blocks,
                s.writesets,
                units.name(),
                s.total,
                s.committed,
                s.headroom,
                s.era_array,
                s.writeset,
                s.writeset_tree,
                s.space_map
            ),
        }
        Ok(EXIT_OK)
    })
}
