//! log_restore: write a dm-log disk dirty log from log_dump's XML.

use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileTypeExt;
use std::process::ExitCode;

use anyhow::{bail, Context};

use era_log_tools::cli::open::check_target;
use era_log_tools::cli::{run, EXIT_OK};
use era_log_tools::commands::log_restore::Args;
use era_log_tools::identify::Family;
use era_log_tools::interrupt::{self, Guarded};
use era_log_tools::log::device::{logical_block_size, open};
use era_log_tools::log::restore::parse;
use era_log_tools::log::run::restore;
use era_log_tools::pdata::io::same_file;
use era_log_tools::pdata::io::OpenMode;

/// The state a log_restore stopped before its write leaves the log in.
const UNCHANGED: &str = "the log was not written and is unchanged";

fn main() -> ExitCode {
    let cli = Args::parse();
    run("log_restore", || {
        let xml = cli.input.display().to_string();
        let log = cli.output.display().to_string();
        interrupt::writing_to(&log);
        if same_file(&cli.input, &cli.output) {
            bail!("{log}: is the input XML {xml}; refusing to write a log over it");
        }
        let file = File::open(&cli.input).with_context(|| xml.clone())?;
        let spec = parse(BufReader::new(file)).with_context(|| xml.clone())?;

        let meta = std::fs::metadata(&cli.output)
            .map_err(|_| anyhow::anyhow!("Couldn't find output file '{log}'"))?;
        if !meta.is_file() && !meta.file_type().is_block_device() {
            bail!("Not a block device or regular file '{log}'.");
        }
        let lbs = logical_block_size(&cli.output, cli.logical_block_size).context(log.clone())?;
        let io = open(&cli.output, OpenMode::Write).context(log.clone())?;
        check_target(&io, &cli.output, Family::Log, cli.force)?;
        let result = restore(&Guarded::new(&io), &spec, lbs, cli.force);
        if let Some(status) = interrupt::after_write(&cli.output, &result, UNCHANGED) {
            return Ok(status);
        }
        result.context(log)?;
        Ok(EXIT_OK)
    })
}
