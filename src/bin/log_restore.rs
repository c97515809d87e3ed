//! log_restore: write a dm-log disk dirty log from log_dump's XML.

use std::io::BufReader;
use std::process::ExitCode;

use era_log_tools::cli::open::{check_target, open_log, open_text_input, refuse_input_as_output};
use era_log_tools::cli::report::OnFileExt;
use era_log_tools::cli::{run_quiet, EXIT_OK};
use era_log_tools::commands::log_restore::Args;
use era_log_tools::identify::Family;
use era_log_tools::interrupt::{self, Guarded};
use era_log_tools::log::device::logical_block_size;
use era_log_tools::log::restore::parse;
use era_log_tools::log::run::restore;
use era_log_tools::pdata::io::OpenMode;

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
        let spec = parse(BufReader::new(open_text_input(&args.input)?.0)).on_file(&args.input)?;
        let io = open_log(&args.output, OpenMode::Write)?;
        let lbs =
            logical_block_size(&args.output, args.logical_block_size).on_file(&args.output)?;
        check_target(&io, &args.output, Family::Log, args.force)?;
        let result = restore(&Guarded::new(&io), &spec, lbs, args.force);
        if let Some(status) = interrupt::after_write(&args.output, &result, UNCHANGED) {
            return Ok(status);
        }
        result.on_file(&args.output)?;
        Ok(EXIT_OK)
    })
}
