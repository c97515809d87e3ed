//! log_restore: write a dm-log disk dirty log from log_dump's XML.

use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::process::ExitCode;

use anyhow::{bail, Context};

use era_log_tools::cli::{run, EXIT_OK};
use era_log_tools::commands::log_restore::Args;
use era_log_tools::log::device::{logical_block_size, open};
use era_log_tools::log::geometry::{check_logical_block_size, DEFAULT_LOGICAL_BLOCK_SIZE};
use era_log_tools::log::restore::parse;
use era_log_tools::log::run::restore;
use era_log_tools::pdata::io::same_file;
use era_log_tools::pdata::io::OpenMode;

fn main() -> ExitCode {
    let cli = Args::parse();
    run("log_restore", || {
        let xml = cli.input.display().to_string();
        let log = cli.output.display().to_string();
        if same_file(&cli.input, &cli.output) {
            bail!("{log}: is the input XML {xml}; refusing to write a log over it");
        }
        let file = File::open(&cli.input).with_context(|| xml.clone())?;
        let spec = parse(BufReader::new(file)).with_context(|| xml.clone())?;

        let exists = cli.output.exists();
        let lbs = if exists {
            logical_block_size(&cli.output, cli.logical_block_size).context(log.clone())?
        } else {
            cli.logical_block_size
                .map(check_logical_block_size)
                .transpose()
                .context(log.clone())?
                .unwrap_or(DEFAULT_LOGICAL_BLOCK_SIZE)
        };
        if !exists {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&cli.output)
                .with_context(|| format!("{log}: creating"))?;
        }
        let io = open(&cli.output, OpenMode::Write).context(log.clone())?;
        // An image file may be extended; a block device has the size it has.
        restore(&io, &spec, lbs, !io.is_block_device()).context(log)?;
        Ok(EXIT_OK)
    })
}
