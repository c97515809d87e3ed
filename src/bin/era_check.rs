//! era_check: validates dm-era metadata.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use era_log_tools::cli::{self, EXIT_ERROR, EXIT_OK};
use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::pdata::io::OpenMode;
use era_log_tools::pdata::report::Severity;

#[derive(Parser)]
#[command(
    name = "era_check",
    version,
    about = "Validate dm-era metadata on a device or file",
    long_about = "Validate dm-era metadata: the superblock, the writeset tree and every \
writeset, the current writeset, the era array, the held metadata snapshot and the reference \
count of every block against the metadata space map.",
    after_help = "Exit status: 0 clean (warnings only), 1 errors found (non-fatal ones too, \
unless --ignore-non-fatal-errors), 2 usage error.

Examples:
  era_check /dev/vg/era-meta
  era_check -q era-meta.img && echo clean
  era_check --metadata-snap /dev/vg/era-meta     # a live device, through its held snapshot"
)]
struct Args {
    /// Metadata device or file
    #[arg(value_name = "INPUT")]
    input: PathBuf,
    /// Fail only on fatal errors (leaks, stray bits and similar are still reported)
    #[arg(long)]
    ignore_non_fatal_errors: bool,
    /// Check only the held metadata snapshot; the device is opened without O_EXCL so that a
    /// live target's metadata can be read
    #[arg(long, visible_alias = "metadata-snapshot")]
    metadata_snap: bool,
    /// Print nothing; report through the exit status only
    #[arg(short, long)]
    quiet: bool,
    /// Check the superblock only
    #[arg(long)]
    super_block_only: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let quiet = args.quiet;
    cli::run_quiet("era_check", quiet, || {
        let mode = if args.metadata_snap {
            OpenMode::ReadShared
        } else {
            OpenMode::ReadExclusive
        };
        let io = cli::open_era_input(&args.input, mode)?;
        let problems = check(
            &io,
            CheckOptions {
                super_block_only: args.super_block_only,
                metadata_snap: args.metadata_snap,
            },
        );
        if !quiet {
            cli::report_problems("era_check", &args.input, &problems);
        }
        let failed = match problems.worst() {
            Some(Severity::Error) => {
                if !quiet {
                    eprintln!("fatal errors in metadata");
                }
                true
            }
            Some(Severity::Warning) => !args.ignore_non_fatal_errors,
            _ => false,
        };
        Ok(if failed { EXIT_ERROR } else { EXIT_OK })
    })
}
