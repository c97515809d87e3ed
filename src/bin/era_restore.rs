//! era_restore: writes dm-era metadata from XML.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use era_log_tools::cli::interrupt::{self, Guarded};
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::era::build::BuildError;
use era_log_tools::era::restore::{restore, RestoreError};

#[derive(Parser)]
#[command(
    name = "era_restore",
    version,
    about = "Restore dm-era metadata from XML",
    long_about = "Restore dm-era metadata from the XML of era_dump (one <bit> per block, or \
compact <marked block_begin len> ranges; bits in any order). The whole input is checked \
before anything is written; an error names its line and column. The output must already \
exist and be at least 40960 bytes; block 0 is written last.",
    after_help = "Exit status: 0 success, 1 error, 2 usage error.

Examples:
  era_restore -i era.xml -o /dev/vg/era-meta
  truncate -s 64M new-meta.img && era_restore -i era.xml -o new-meta.img"
)]
struct Args {
    /// XML input (a regular file: it is read twice)
    #[arg(short, long, value_name = "FILE")]
    input: PathBuf,
    /// Metadata device or pre-allocated file to write
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Print nothing; report through the exit status only
    #[arg(short, long)]
    quiet: bool,
    /// Write even over a device that holds something else (a filesystem, a disk log, …)
    #[arg(long)]
    force: bool,
}

/// The state an interrupted restore leaves its output in.
const UNFINISHED: &str = "the output holds an unfinished restore that no tool or kernel will \
load; run era_restore again";

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run_quiet("era_restore", args.quiet, || {
        interrupt::writing_to(&args.output.display().to_string());
        let meta = std::fs::metadata(&args.input)
            .map_err(|_| anyhow::anyhow!("Couldn't find input file '{}'", args.input.display()))?;
        if !meta.is_file() {
            anyhow::bail!(
                "Not a regular file '{}' (the XML is read twice).",
                args.input.display()
            );
        }
        let io = cli::open_era_output(&args.output, &args.input, args.force)?;
        let bar = cli::byte_progress(2 * meta.len(), args.quiet);
        bar.set_message("era_restore");
        let result = restore(&args.input, &Guarded::new(&io), &|n| bar.inc(n));
        bar.finish_and_clear();
        if let Some(status) = interrupt::after_write(&args.output, &result, UNFINISHED) {
            return Ok(status);
        }
        match result {
            Ok(()) => Ok(EXIT_OK),
            Err(e @ (RestoreError::Xml(_) | RestoreError::Input(_))) => {
                Err(anyhow::Error::new(e).context(args.input.display().to_string()))
            }
            Err(e @ RestoreError::Build(BuildError::Io(_))) => {
                Err(anyhow::Error::new(e).context(args.output.display().to_string()))
            }
            Err(e) => Err(anyhow::Error::new(e)),
        }
    })
}
