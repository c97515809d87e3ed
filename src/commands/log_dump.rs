//! log_dump: its command line and its run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::log_files::open_log;
use crate::cli::open::advice;
use crate::cli::report::{error_message, failure_json, file_error, finding_line, OnFileExt};
use crate::cli::{run_quiet, say, Output, EXIT_OK};
use crate::json::Object;
use crate::log::device::logical_block_size;
use crate::log::dump::{inspect, render, DumpOptions, Format, RenderError};
use crate::log::format::FORMAT;
use crate::log::LogError;
use crate::pdata::io::OpenMode;

// Example commands stay under 40 columns, continued with `\`: clap wraps this text at the
// terminal's width, and a command cut in two would not paste (tests/log_help.rs).
const EXAMPLES: &str = "\
Examples:
  log_dump /dev/vg/lv_mlog
      XML: header fields, clean/dirty counts, the dirty ranges (end exclusive)
  log_dump --format text \\
    --region-size 1024 \\
    --length 2097152 /dev/vg/lv_mlog
      for people; checks nr_regions against the mirror's geometry
      and adds sector ranges
  log_dump --format json \\
    -o log.json log.img
  log_dump --nr-regions 2048 \\
    /dev/vg/lv_mlog
      read the bits of a log LVM initialised but never activated

The region size and the length are the mirror's, in sectors: `dmsetup table`
shows the mirror line as START LENGTH mirror disk 2 LOG_DEVICE REGION_SIZE
..., and `lvs -o +regionsize,size VG/LV` shows both (in sectors with lvs's
units set to s). They go together: a region size alone would label the ranges
with sectors nothing has checked.

Exit status: 0 readable log (warnings go to stderr), 1 not a usable log or I/O
error, 2 usage error. With --format json, a failure prints {\"log\",
\"outcome\": \"failed\", \"error\"} on stdout.";

value_enum! {
    /// `--format`: the form of the report.
    Format {
        Xml => "xml", "Read back by log_restore";
        Json => "json", "For scripts";
        Text => "text", "For people";
    }
}

/// Dump a dm-log "disk" dirty log (the region log of the device-mapper mirror target).
///
/// Reads the header and the clean bitmap the way the kernel does at activation and reports
/// the dirty regions. The device is opened with O_EXCL, so a log an active mirror holds is
/// refused.
#[derive(Parser)]
#[command(name = "log_dump", version, after_help = EXAMPLES)]
pub struct Args {
    /// Output format: xml (read back by log_restore), json (for scripts) or text.
    ///
    /// With json, a failure still prints one object on stdout: the log, "outcome": "failed"
    /// and "error" (the line printed on stderr).
    #[arg(long, value_enum, default_value_t = Format::Xml)]
    pub format: Format,
    /// Read the bits of N regions instead of the header's nr_regions.
    ///
    /// For a header whose nr_regions is all ones: a log LVM initialised and never activated.
    #[arg(long, value_name = "N")]
    pub nr_regions: Option<u64>,
    /// Region size of the mirror in sectors (needs --length): adds sector ranges.
    ///
    /// The report then gives the region size, and each dirty range in sectors too (end
    /// exclusive). nr_regions must equal ceil(length / region size).
    #[arg(long, value_name = "SECTORS", requires = "length")]
    pub region_size: Option<u64>,
    /// Length of the mirror in sectors (needs --region-size): checks nr_regions against it.
    ///
    /// The last sector range is clipped to it.
    #[arg(long, value_name = "SECTORS", requires = "region_size")]
    pub length: Option<u64>,
    /// Logical block size of the log device in bytes (default: the device's, else 512).
    #[arg(long, value_name = "BYTES")]
    pub logical_block_size: Option<u32>,
    /// The log is a clustered-disk log of cmirrord (warns about host byte order).
    ///
    /// Such a log is read correctly only if it was written on a little-endian host.
    #[arg(long)]
    pub clustered: bool,
    /// Write the report to FILE instead of stdout.
    ///
    /// FILE may not be the input. A regular FILE is written under a temporary name beside it
    /// and renamed over it only on success, so a failed run leaves it as it was; a device,
    /// FIFO or /dev/stdout is written in place. - is stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The log device or image.
    pub log: PathBuf,
    /// Print nothing on stderr; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
}

parse_with_bare_version!(Args);

/// log_dump on the process's arguments; usage errors end the process (exit status 2).
pub fn main() -> ExitCode {
    run(super::parse_with::<Args>(&|what| {
        // Best effort: the exit status and stderr tell the outcome anyway.
        let _ = failure_json(|o| failed_log(o, None), what);
    }))
}

/// Reports what the log holds; the exit status tells the outcome.
pub fn run(args: Args) -> ExitCode {
    run_quiet("log_dump", args.quiet, || {
        let result = dump(&args);
        if let (Err(e), Format::Json) = (&result, args.format) {
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

/// The run, whose error [`run`] reports (as JSON too, when asked).
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
    let mut out = Output::create(args.output.as_deref(), &[&args.log])?;
    match render(&report, &io, args.format, &mut out) {
        Err(RenderError::Read(e)) => return Err(e).on_file(&args.log),
        written => written?,
    }
    out.commit()?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parsed;

    fn format_of(line: &[&str]) -> Format {
        parsed::<Args>(line).format
    }

    #[test]
    fn xml_is_the_default_and_every_format_is_taken_by_its_name() {
        assert_eq!(format_of(&["log_dump", "log.img"]), Format::Xml);
        for (name, format) in [
            ("xml", Format::Xml),
            ("json", Format::Json),
            ("text", Format::Text),
        ] {
            assert_eq!(format_of(&["log_dump", "--format", name, "l"]), format);
        }
        assert!(Args::try_parse_from(["log_dump", "--format", "yaml", "l"]).is_err());
    }
}
