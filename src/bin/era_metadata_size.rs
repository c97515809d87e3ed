//! era_metadata_size: how large to make an era target's metadata device.

use std::io::Write;
use std::process::ExitCode;

use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::commands::era_metadata_size::{Args, FormatArg, UnitsArg};
use era_log_tools::era::metadata_size::{nr_blocks, parse_size, size, SizeUnits};

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
        let line = match args.format {
            FormatArg::Text if args.numeric_only => format!("{value}"),
            FormatArg::Text => format!("{value} {}", units.name()),
            FormatArg::Json => format!(
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
        };
        writeln!(std::io::stdout().lock(), "{line}")?;
        Ok(EXIT_OK)
    })
}
