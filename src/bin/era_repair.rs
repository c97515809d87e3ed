//! era_repair: writes a salvaged copy of damaged dm-era metadata.

use std::process::ExitCode;

fn main() -> ExitCode {
    era_log_tools::commands::era_repair::main()
}
