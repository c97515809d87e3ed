//! log_dump: report what a dm-log disk dirty log holds.

use std::process::ExitCode;

use era_log_tools::cli::open::advice;
use era_log_tools::cli::report::{
    error_message, failure_json, file_error, finding_line, OnFileExt,
};
use era_log_tools::cli::{run_quiet, say, Output, EXIT_OK};
use era_log_tools::commands::log_dump::{Args, Fmt};
use era_log_tools::commands::log_files::open_log;
use era_log_tools::json::Object;
use era_log_tools::log::device::logical_block_size;
use era_log_tools::log::dump::{inspect, render, DumpOptions, Format};
use era_log_tools::log::format::FORMAT;
use era_log_tools::log::LogError;
use era_log_tools::pdata::io::OpenMode;

fn main() -> ExitCode {
    let args = era_log_tools::commands::parse_with::<Args>(&|what| {
        // Best effort: the exit status and stderr tell the outcome anyway.
        let _ = failure_json(|o| failed_log(o, None), what);
    });
    run_quiet("log_dump", args.quiet, || {
        let result = dump(&args);
        if let (Err(e), Fmt::Json) = (&result, args.format) {
            failure_json(
                |o| failed_log(o, Some(args.log.display().to_string())),
                &error_message(e),
            )?;
        }
        result
    })
}

/// The fields of a failed run's JSON before its error: the log (unknown after a usage
/// error) and the outcome. Printed on stdout, never into an `-o` file, which keeps what it
/// held.
fn failed_log(o: &mut Object<'_>, log: Option<String>) -> std::io::Result<()> {
    o.field("log", log)?.field("outcome", "failed").map(drop)
}

fn dump(args: &Args) -> anyhow::Result<u8> {
    let name = args.log.display().to_string();
    let io = open_log(&args.log, OpenMode::ReadExclusive)?;
    let lbs = logical_block_size(&args.log, args.logical_block_size).on_file(&args.log)?;
    let opts = DumpOptions {
        logical_block_size: lbs,
        region_size: args.region_size,
        length: args.length,
        nr_regions: args.nr_regions,
        clustered: args.clustered,
    };
    let report = match inspect(&io, &opts) {
        Err(e @ LogError::BadMagic { .. }) => {
            let advice = advice(&io, &FORMAT).map(|a| format!("; {a}"));
            return Err(file_error(
                &args.log,
                format!("{e}{}", advice.unwrap_or_default()),
            ));
        }
        r => r.on_file(&args.log)?,
    };
    if !args.quiet {
        for f in &report.findings {
            say(&finding_line("log_dump", &name, f));
        }
    }
    let format = match args.format {
        Fmt::Xml => Format::Xml,
        Fmt::Json => Format::Json,
        Fmt::Text => Format::Text,
    };
    let mut out = Output::create(args.output.as_deref(), &[&args.log])?;
    render(&report, format, &mut out)?;
    out.commit()?;
    Ok(EXIT_OK)
}
