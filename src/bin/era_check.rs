//! era_check: validates dm-era metadata.

use std::process::ExitCode;

use era_log_tools::cli::report::{error_message, findings_json, print_findings};
use era_log_tools::cli::{self, EXIT_ERROR, EXIT_OK};
use era_log_tools::commands;
use era_log_tools::commands::era_check::Args;
use era_log_tools::commands::era_files;
use era_log_tools::commands::ReportFormat;
use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::live;
use era_log_tools::pdata::io::OpenMode;
use era_log_tools::pdata::report::{Problems, Severity};

fn main() -> ExitCode {
    let args = commands::parse_with::<Args>(&|what| {
        let none = Problems::default();
        // Best effort: the exit status and stderr tell the outcome anyway.
        let _ = findings_json(&mut std::io::stdout().lock(), None, &none, Some(what));
    });
    let quiet = args.quiet;
    let input = args.source.name();
    cli::run_quiet("era_check", quiet, || {
        let json = args.format == ReportFormat::Json;
        if json {
            cli::output::require_stdout()?;
        }
        let mode = if args.metadata_snap {
            OpenMode::ReadShared
        } else {
            OpenMode::ReadExclusive
        };
        let opts = CheckOptions {
            super_block_only: args.super_block_only,
            metadata_snap: args.metadata_snap,
        };
        let checked = match &args.source.live {
            Some(device) => live::check_snapshot(device, &args.source.options(), opts)
                .map(|(problems, _)| problems)
                .map_err(era_files::live_error),
            None => era_files::open_era_input(&input, mode).map(|io| {
                let bar = era_files::block_progress(&io, "checking metadata", quiet);
                let problems = check(&cli::Counted::new(&io, &bar), opts);
                bar.finish_and_clear();
                problems
            }),
        };
        let problems = match checked {
            Ok(problems) => problems,
            // A script that asked for JSON gets it whatever happened.
            Err(e) if json => {
                let none = Problems::default();
                findings_json(
                    &mut std::io::stdout().lock(),
                    Some(&input),
                    &none,
                    Some(&error_message(&e)),
                )?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        match args.format {
            ReportFormat::Json => {
                findings_json(&mut std::io::stdout().lock(), Some(&input), &problems, None)?
            }
            ReportFormat::Text if !quiet => print_findings("era_check", &input, &problems),
            ReportFormat::Text => {}
        }
        let failed = match problems.worst() {
            Some(Severity::Error) => {
                if !quiet {
                    cli::say("fatal errors in metadata");
                }
                true
            }
            Some(Severity::Warning) => !args.ignore_non_fatal_errors,
            _ => false,
        };
        Ok(if failed { EXIT_ERROR } else { EXIT_OK })
    })
}
