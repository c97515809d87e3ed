//! era_repair: writes a salvaged copy of damaged dm-era metadata.

use std::process::ExitCode;

use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::commands::era_repair::Args;
use era_log_tools::era::build::BuildError;
use era_log_tools::era::repair::{repair, RepairError};
use era_log_tools::pdata::io::OpenMode;

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run_quiet("era_repair", args.quiet, || {
        let input = cli::open_era_input(&args.input, OpenMode::ReadExclusive)?;
        let output = cli::open_era_output(&args.output, &args.input)?;
        match repair(&input, &output) {
            Ok(problems) => {
                if !args.quiet {
                    cli::report_problems("era_repair", &args.input, &problems);
                }
                Ok(EXIT_OK)
            }
            Err(e @ RepairError::Read(_)) => {
                Err(anyhow::Error::new(e).context(args.input.display().to_string()))
            }
            Err(e @ RepairError::Build(BuildError::Io(_))) => {
                Err(anyhow::Error::new(e).context(args.output.display().to_string()))
            }
            Err(e) => Err(anyhow::Error::new(e)),
        }
    })
}
