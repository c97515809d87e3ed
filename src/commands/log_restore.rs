//! log_restore's command line.

use std::path::PathBuf;

use clap::Parser;

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

parse_with_bare_version!(Args);
