//! era_metadata_size: how large to make an era target's metadata device.

use std::io::Write;
use std::process::ExitCode;

use era_log_tools::cli::report::failure_json;
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::commands;
use era_log_tools::commands::era_metadata_size::{Args, FormatArg};
use era_log_tools::era::metadata_size::{nr_blocks, size};
use era_log_tools::json::Object;

fn main() -> ExitCode {
    let args = commands::parse_with::<Args>(&|what| {
        // Best effort: the exit status and stderr tell the outcome anyway.
        let _ = failure_json(|_| Ok(()), what);
    });
    let units = args.units;
    let n = match (args.nr_blocks, args.origin_size, args.block_size) {
        (Some(n), _, _) => Ok(n),
        (None, Some(origin), Some(bs)) => nr_blocks(origin, bs),
        _ => commands::usage_error_with::<Args>(
            "give --nr-blocks, or --origin-size with --block-size",
            &|what| {
                let _ = failure_json(|_| Ok(()), what);
            },
        ),
    };
    let json = matches!(args.format, FormatArg::Json);
    cli::run("era_metadata_size", || {
        cli::output::require_stdout()?;
        let s = match n.and_then(|n| size(n, args.writesets)) {
            Ok(s) => s,
            // A script that asked for JSON gets it whatever happened.
            Err(e) if json => {
                failure_json(|_| Ok(()), &e.to_string())?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let value = s.in_units(units);
        let line = match args.format {
            FormatArg::Text if args.numeric_only => format!("{value}"),
            FormatArg::Text => format!("{value} {}", units.name()),
            FormatArg::Json => {
                let mut json = Vec::new();
                Object::begin(&mut json)?
                    .field("nr_blocks", s.nr_blocks)?
                    .field("writesets", s.writesets)?
                    .field("size", value)?
                    .field("units", units.name())?
                    .field("metadata_blocks", s.total)?
                    .field("committed_blocks", s.committed)?
                    .field("headroom_blocks", s.headroom)?
                    .field("era_array_blocks", s.era_array)?
                    .field("writeset_blocks", s.writeset)?
                    .field("writeset_tree_blocks", s.writeset_tree)?
                    .field("space_map_blocks", s.space_map)?
                    .end()?;
                String::from_utf8_lossy(&json).into_owned()
            }
        };
        writeln!(std::io::stdout().lock(), "{line}")?;
        Ok(EXIT_OK)
    })
}
