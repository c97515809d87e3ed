//! log_restore: write a dm-log disk dirty log from log_dump's XML.

use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;

use era_log_tools::cli::{run, EXIT_OK};
use era_log_tools::log::device::{logical_block_size, open};
use era_log_tools::log::geometry::{check_logical_block_size, DEFAULT_LOGICAL_BLOCK_SIZE};
use era_log_tools::log::restore::parse;
use era_log_tools::log::run::restore;
use era_log_tools::pdata::io::same_file;
use era_log_tools::pdata::io::OpenMode;

const EXAMPLES: &str = "\
Examples:
  log_dump /dev/vg/lv_mlog > before.xml
  log_restore -i before.xml -o /dev/vg/lv_mlog
      put a log back as it was dumped (e.g. to undo a log_repair)
  log_restore -i edited.xml -o new-log.img
      create an image file holding the log the XML describes

Only the first buf_size bytes of LOG are written (header, header area, bitmap), in one
write followed by fsync; the header area and the bytes after the bitmap keep their content.";

/// Write a dm-log "disk" dirty log from the XML of log_dump.
///
/// Every region is clean except the dirty ranges. The whole XML is checked before anything
/// is written; errors name the line and column.
#[derive(Parser)]
#[command(name = "log_restore", version, after_help = EXAMPLES)]
struct Cli {
    /// The XML written by log_dump.
    #[arg(short = 'i', long, value_name = "XML")]
    input: PathBuf,
    /// The log device or image to write (an image file is created if missing).
    #[arg(short = 'o', long, value_name = "LOG")]
    output: PathBuf,
    /// Logical block size of the log device in bytes (default: the device's, else 512).
    #[arg(long, value_name = "BYTES")]
    logical_block_size: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
