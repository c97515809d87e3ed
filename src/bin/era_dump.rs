//! era_dump: writes dm-era metadata as XML.

use std::process::ExitCode;

fn main() -> ExitCode {
    era_log_tools::commands::era_dump::main()
}
