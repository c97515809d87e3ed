//! log_restore: write a dm-log disk dirty log from log_dump's XML.

use std::io::BufReader;
use std::process::ExitCode;

use era_log_tools::cli::open::{open_text_input, refuse_input_as_output};
use era_log_tools::cli::report::OnFileExt;
use era_log_tools::cli::{run_quiet, EXIT_OK};
use era_log_tools::commands::log_files::open_log_output;
use era_log_tools::commands::log_restore::Args;
use era_log_tools::interrupt::{self, Guarded};
use era_log_tools::log::device::logical_block_size;
use era_log_tools::log::format::geometry::{buf_size, DEFAULT_LOGICAL_BLOCK_SIZE};
use era_log_tools::log::restore::parse;
use era_log_tools::log::run::restore;

/// The state a log_restore stopped before its last write leaves the log in.
const UNCHANGED: &str = "the log was not completely written: it is unchanged, or holds the new \
bits under its old header (written first when the header changes); run log_restore again";

fn main() -> ExitCode {
    let args = Args::parse();
    run_quiet("log_restore", args.quiet, || {
        interrupt::writing_to(&args.output.display().to_string());
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
