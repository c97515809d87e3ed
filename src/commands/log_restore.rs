//! log_restore: its command line and its run.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::log_files::open_log_output;
use crate::cli::open::{open_text_input, refuse_input_as_output};
use crate::cli::report::OnFileExt;
use crate::cli::EXIT_OK;
use crate::interrupt::{self, Guarded};
use crate::log::device::logical_block_size;
use crate::log::format::geometry::{buf_size, DEFAULT_LOGICAL_BLOCK_SIZE};
use crate::log::restore::parse;
use crate::log::run::restore;
/// The state a log_restore stopped before its last write leaves the log in.
const UNCHANGED: &str = "the log was not completely written: it is unchanged, or holds the new \
bits under its old header (written first when the header changes); run log_restore again";

// Example commands stay under 40 columns, continued with `\`: clap wraps this text at the
// terminal's width, and a command cut in two would not paste (tests/log_help.rs).
const EXAMPLES: &str = "\
Examples:
  log_dump /dev/vg/lv_mlog > before.xml
  log_restore -i before.xml \\
    -o /dev/vg/lv_mlog
      put a log back as it was dumped (the log only: the legs are not touched)
  truncate -s 1M new-log.img
  log_restore -i edited.xml \\
    -o new-log.img
      write the log the XML describes into a new image file

Only the first buf_size bytes of LOG are written (header, header area,
bitmap), in one write followed by fsync (two when the header changes: the new
bits under the old header first); the header area and the bytes after the
bitmap keep their content.";

/// Write a dm-log "disk" dirty log from the XML of log_dump.
///
/// Every region is clean except the dirty ranges. The whole XML is checked before anything
/// is written; errors name the line and column.
#[derive(Parser)]
#[command(name = "log_restore", version, after_help = EXAMPLES)]
pub struct Args {
    /// The XML written by log_dump.
    #[arg(short = 'i', long, value_name = "XML")]
    pub input: PathBuf,
    /// The log device or image to write; it must exist and hold the log's buffer.
    ///
    /// Never the XML input itself (refused).
    #[arg(short = 'o', long, value_name = "LOG")]
    pub output: PathBuf,
    /// Write even over what is neither zeros nor a disk log of the same region count.
    ///
    /// Without it the output is refused when it holds the log of a mirror with another
    /// region count, a filesystem, LVM, LUKS, swap, a partition table, dm-era metadata, or
    /// data that is neither zeros nor a signature we know.
    #[arg(long)]
    pub force: bool,
    /// Logical block size of the log device in bytes (default: the device's, else 512).
    #[arg(long, value_name = "BYTES")]
    pub logical_block_size: Option<u32>,
    /// Print nothing on stderr; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
}

parse_with_bare_version!(Args, main = run);

/// Writes the log the XML input describes to the output; the exit status tells the outcome.
pub fn run(args: Args) -> ExitCode {
    super::run_writer("log_restore", args.quiet, &args.output, || {
        if std::fs::metadata(&args.output).is_ok() {
            refuse_input_as_output(&args.output, &args.input)?;
        }
        let spec = parse(BufReader::new(open_text_input(&args.input, "log_dump")?.0))
            .on_file(&args.input)?;
        // What a missing output would need: an image file has 512-byte logical blocks unless
        // told otherwise.
        let file_lbs = args
            .logical_block_size
            .unwrap_or(DEFAULT_LOGICAL_BLOCK_SIZE);
        let need = buf_size(spec.regions, file_lbs);
        let io = open_log_output(&args.output, &args.input, need, args.force)?;
        let lbs =
            logical_block_size(&args.output, args.logical_block_size).on_file(&args.output)?;
        let result = restore(&Guarded::new(&io), &spec, lbs, args.force);
        if let Some(status) = interrupt::after_write(&args.output, &result, UNCHANGED) {
            return Ok(status);
        }
        result.on_file(&args.output)?;
        Ok(EXIT_OK)
    })
}
