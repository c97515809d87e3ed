//! log_dump: report what a dm-log disk dirty log holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use era_log_tools::cli::open::advice;
use era_log_tools::cli::{run, say, Output, EXIT_OK};
use era_log_tools::identify::Family;
use era_log_tools::log::device::{logical_block_size, open};
use era_log_tools::log::dump::{inspect, render, DumpOptions, Format};
use era_log_tools::log::LogError;
use era_log_tools::pdata::io::OpenMode;

const EXAMPLES: &str = "\
Examples:
  log_dump /dev/vg/lv_mlog
      XML: header fields, clean/dirty counts and the dirty ranges (end exclusive)
  log_dump --region-size 1024 --length 2097152 --format text /dev/vg/lv_mlog
      for people; also checks nr_regions against the mirror and adds sector ranges
  log_dump --format json -o log.json log.img
  log_dump --nr-regions 2048 /dev/vg/lv_mlog
      read the bits of a log LVM initialised but never activated

Exit status: 0 readable log (warnings go to stderr), 1 not a usable log or I/O error,
2 usage error.";

#[derive(Clone, Copy, ValueEnum)]
enum Fmt {
    Xml,
    Json,
    Text,
}

/// Dump a dm-log "disk" dirty log (the region log of the device-mapper mirror target).
///
/// Reads the header and the clean bitmap the way the kernel does at activation and reports
/// the dirty regions. The device is opened with O_EXCL, so a log an active mirror holds is
/// refused.
#[derive(Parser)]
#[command(name = "log_dump", version, after_help = EXAMPLES)]
struct Cli {
    /// Output format: xml (read back by log_restore), json (for scripts) or text.
    #[arg(long, value_enum, default_value_t = Fmt::Xml)]
    format: Fmt,
    /// Region size of the mirror in sectors: adds sector ranges.
    #[arg(long, value_name = "SECTORS")]
    region_size: Option<u64>,
    /// Length of the mirror in sectors: checks nr_regions against it.
    #[arg(long, value_name = "SECTORS", requires = "region_size")]
    length: Option<u64>,
    /// Read the bits of N regions instead of the header's nr_regions.
    #[arg(long, value_name = "N")]
    nr_regions: Option<u64>,
    /// Logical block size of the log device in bytes (default: the device's, else 512).
    #[arg(long, value_name = "BYTES")]
    logical_block_size: Option<u32>,
    /// The log is a clustered-disk log of cmirrord (warns about host byte order).
    #[arg(long)]
    clustered: bool,
    /// Write the report to FILE instead of stdout (- for stdout); a regular FILE is replaced
    /// only when the run succeeds.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The log device or image.
    log: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run("log_dump", || {
        let name = cli.log.display().to_string();
        let lbs = logical_block_size(&cli.log, cli.logical_block_size).context(name.clone())?;
        let io = open(&cli.log, OpenMode::ReadExclusive).context(name.clone())?;
        let opts = DumpOptions {
            logical_block_size: lbs,
            region_size: cli.region_size,
            length: cli.length,
            nr_regions: cli.nr_regions,
            clustered: cli.clustered,
        };
        let report = match inspect(&io, &opts) {
            Err(e @ LogError::BadMagic { .. }) => match advice(&io, Family::Log) {
                Some(a) => bail!("{name}: {e}; {a}"),
                None => return Err(anyhow::Error::new(e).context(name)),
            },
            r => r.context(name.clone())?,
        };
        for f in &report.findings {
            say(&format!(
                "log_dump: {}: {name}: {}",
                f.severity.name(),
                f.message
            ));
        }
        let format = match cli.format {
            Fmt::Xml => Format::Xml,
            Fmt::Json => Format::Json,
            Fmt::Text => Format::Text,
        };
        let mut out = Output::create(cli.output.as_deref(), &[&cli.log])?;
        render(&report, format, &mut out)?;
        out.commit()?;
        Ok(EXIT_OK)
    })
}
