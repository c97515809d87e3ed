//! log_restore: write a dm-log disk dirty log from log_dump's XML.

use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;

use era_log_tools::cli::{run, EXIT_OK};
use era_log_tools::log::device::{logical_block_size, open, read_prefix, write_prefix, AlignedBuf};
use era_log_tools::log::geometry::buf_size;
use era_log_tools::log::image::compose;
use era_log_tools::log::restore::parse;
use era_log_tools::pdata::io::{ByteIo, OpenMode};

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
/// Every region is clean except the <dirty> ranges. The whole XML is checked before anything
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
        let file = File::open(&cli.input).with_context(|| xml.clone())?;
        let spec = parse(BufReader::new(file)).with_context(|| xml.clone())?;

        let log = cli.output.display().to_string();
        let exists = cli.output.exists();
        let lbs = if exists {
            logical_block_size(&cli.output, cli.logical_block_size).context(log.clone())?
        } else {
            cli.logical_block_size.unwrap_or(512)
        };
        let len = buf_size(spec.regions, lbs);
        if !exists {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&cli.output)
                .with_context(|| format!("{log}: creating"))?;
        }
        let io = open(&cli.output, OpenMode::Write).context(log.clone())?;
        let base = if io.size_bytes() >= len {
            read_prefix(&io, len).context(log.clone())?
        } else if io.is_block_device() {
            bail!(
                "{log}: log buffer: device holds {} bytes, but {len} bytes are needed",
                io.size_bytes()
            );
        } else {
            // A short image file: keep what it has, zero the rest.
            let mut b = AlignedBuf::zeroed(len as usize);
            let have = io.size_bytes() as usize;
            io.read_at(&mut b.as_mut_slice()[..have], 0)
                .with_context(|| format!("{log}: reading"))?;
            b
        };
        let new = compose(&base, &spec.header(), &spec.bitmap());
        write_prefix(&io, &new).context(log)?;
        Ok(EXIT_OK)
    })
}
