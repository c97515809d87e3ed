//! era_invalidate: lists the origin blocks written since a given era.

use std::path::Path;
use std::process::ExitCode;

use era_log_tools::cli::report::{error_message, failure_json, finding_line, OnFileExt};
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::commands;
use era_log_tools::commands::era_files;
use era_log_tools::commands::era_invalidate::{Args, FormatArg, UnitsArg};
use era_log_tools::era::invalidate::listing::{write, write_live, Format, Offline, Units};
use era_log_tools::era::invalidate::written_since;
use era_log_tools::era::live;
use era_log_tools::era::view::View;
use era_log_tools::pdata::io::OpenMode;

fn main() -> ExitCode {
    let args = commands::parse_with::<Args>(&|what| {
        // Best effort: the exit status and stderr tell the outcome anyway.
        let _ = failure_json(|o| o.field("written_since", None::<u32>).map(drop), what);
    });
    let format = match args.format {
        None if args.source.live.is_some() => Format::Json,
        None | Some(FormatArg::Xml) => Format::Xml,
        Some(FormatArg::Text) => Format::Text,
        Some(FormatArg::Json) => Format::Json,
    };
    let units = match args.units {
        UnitsArg::Blocks => Units::Blocks,
        UnitsArg::Sectors => Units::Sectors,
        UnitsArg::Bytes => Units::Bytes,
    };
    if format == Format::Xml && units != Units::Blocks {
        commands::usage_error::<Args>("--units sectors|bytes needs --format text or json");
    }
    let quiet = args.quiet;
    let say = |line: String| {
        if !quiet {
            cli::say(&line)
        }
    };
    // Set once the output exists: a failure before it still owes a script its JSON.
    let started = std::cell::Cell::new(false);
    let body = || match &args.source.live {
        Some(device) => {
            let (set, info) = live::invalidate(device, &args.source.options(), args.written_since)
                .map_err(era_files::live_error)?;
            for w in &set.warnings {
                say(finding_line("era_invalidate", device, w));
            }
            let mut out = cli::Output::create(args.output.as_deref(), &[Path::new(device)])?;
            started.set(true);
            write_live(&mut out, &set, format, units, args.written_since, &info)?;
            out.commit()?;
            if format != Format::Json {
                say(format!(
                    "era_invalidate: {device}: note: metadata snapshot {}: read and dropped; \
                     next --written-since {}",
                    info.snapshot_root,
                    info.next_written_since()
                ));
            }
            Ok(EXIT_OK)
        }
        None => {
            let input = args.source.name();
            let mode = if args.metadata_snapshot {
                OpenMode::ReadShared
            } else {
                OpenMode::ReadExclusive
            };
            let io = era_files::open_era_input(&input, mode)?;
            let view = View::open(&io, args.metadata_snapshot).on_file(&input)?;
            let set = written_since(&io, &view, args.written_since).on_file(&input)?;
            for w in &set.warnings {
                say(finding_line(
                    "era_invalidate",
                    &input.display().to_string(),
                    w,
                ));
            }
            let read = Offline {
                since: args.written_since,
                block_size: view.sb.data_block_size,
                era: view.block0.current_era,
                snapshot_era: view.snapshot.then_some(view.sb.current_era),
            };
            // Refused before the output is touched.
            read.per_block(units, set.nr_blocks).on_file(&input)?;
            let mut out = cli::Output::create(args.output.as_deref(), &[&input])?;
            started.set(true);
            write(&mut out, &set, format, units, &read)?;
            out.commit()?;
            Ok(EXIT_OK)
        }
    };
    cli::run_quiet("era_invalidate", quiet, || {
        let result = body();
        if let Err(e) = &result {
            let to_stdout = args.output.as_deref().map_or(true, cli::output::is_stdout);
            if format == Format::Json && to_stdout && !started.get() {
                cli::output::require_stdout()?;
                failure_json(
                    |o| o.field("written_since", args.written_since).map(drop),
                    &error_message(e),
                )?;
            }
        }
        result
    })
}
