//! era_repair: writes a salvaged copy of damaged dm-era metadata.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use era_log_tools::cli::interrupt::{self, Guarded};
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::era::build::BuildError;
use era_log_tools::era::repair::{repair, RepairError};
use era_log_tools::pdata::io::OpenMode;

#[derive(Parser)]
#[command(
    name = "era_repair",
    version,
    about = "Repair dm-era metadata into a new device or file",
    long_about = "Repair dm-era metadata: read what can be read from INPUT (whose superblock \
must be valid), report what cannot, and write fresh, consistent metadata to OUTPUT. The same \
as era_dump --repair piped into era_restore, without the XML. Unreadable writeset words \
count as written in their era and unreadable era-array entries as the current era, so no \
block is ever reported as unchanged when it may have changed.",
    after_help = "Exit status: 0 success, 1 error, 2 usage error.

Examples:
  era_repair -i /dev/vg/era-meta -o /dev/vg/era-meta-new
  truncate -s 64M fixed.img && era_repair -i damaged.img -o fixed.img && era_check fixed.img"
)]
struct Args {
    /// Damaged metadata device or file
    #[arg(short, long, value_name = "FILE")]
    input: PathBuf,
    /// Another device or pre-allocated file receiving the repaired metadata
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Print nothing; report through the exit status only
    #[arg(short, long)]
    quiet: bool,
    /// Write even over a device that holds something else (a filesystem, a disk log, …)
    #[arg(long)]
    force: bool,
}

/// The state an interrupted repair leaves its output in.
const UNFINISHED: &str = "the output holds an unfinished repair that no tool or kernel will \
load; run era_repair again";

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run_quiet("era_repair", args.quiet, || {
        interrupt::writing_to(&args.output.display().to_string());
        let input = cli::open_era_input(&args.input, OpenMode::ReadExclusive)?;
        let output = cli::open_era_output(&args.output, &args.input, args.force)?;
        let result = repair(&input, &Guarded::new(&output));
        if let Some(status) = interrupt::after_write(&args.output, &result, UNFINISHED) {
            return Ok(status);
        }
        match result {
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
