//! log_restore: write a dm-log disk dirty log from log_dump's XML.

use std::process::ExitCode;

fn main() -> ExitCode {
    era_log_tools::commands::log_restore::main()
}
