//! era_restore: writes dm-era metadata from XML.

use std::process::ExitCode;

fn main() -> ExitCode {
    era_log_tools::commands::era_restore::main()
}
