//! era_invalidate: lists the origin blocks written since a given era.

use std::process::ExitCode;

fn main() -> ExitCode {
    era_log_tools::commands::era_invalidate::main()
}
