//! log_dump: report what a dm-log disk dirty log holds.

use std::process::ExitCode;

use anyhow::{bail, Context};

use era_log_tools::cli::open::advice;
use era_log_tools::cli::{run, say, Output, EXIT_OK};
use era_log_tools::identify::Family;

use era_log_tools::commands::log_dump::{Args, Fmt};
use era_log_tools::log::device::{logical_block_size, open};
use era_log_tools::log::dump::{inspect, render, DumpOptions, Format};
use era_log_tools::log::LogError;
use era_log_tools::pdata::io::OpenMode;

fn main() -> ExitCode {
    let cli = Args::parse();
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
