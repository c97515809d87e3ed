//! era_metadata_size: how large to make an era target's metadata device.

use std::process::ExitCode;

fn main() -> ExitCode {
    era_log_tools::commands::era_metadata_size::main()
}
