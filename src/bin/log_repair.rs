//! log_repair: rewrite the header or the clean bits of a dm-log disk dirty log, resynchronise
//! the mirror legs offline, or put back what such a run overwrote.

use std::process::ExitCode;

fn main() -> ExitCode {
    era_log_tools::commands::log_repair::main()
}
