//! log_dump: report what a dm-log disk dirty log holds.

use std::process::ExitCode;

fn main() -> ExitCode {
    era_log_tools::commands::log_dump::main()
}
