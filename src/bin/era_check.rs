//! era_check: validates dm-era metadata.

use std::process::ExitCode;

fn main() -> ExitCode {
    era_log_tools::commands::era_check::main()
}
