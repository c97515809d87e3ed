//! era_dump: writes dm-era metadata as XML.

use std::process::ExitCode;

use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::commands::era_dump::Args;
use era_log_tools::era::dump::{dump, DumpError, DumpOptions};
use era_log_tools::pdata::io::OpenMode;

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run("era_dump", || {
        let mode = if args.metadata_snap {
            OpenMode::ReadShared
        } else {
            OpenMode::ReadExclusive
        };
        let io = cli::open_era_input(&args.input, mode)?;
        let mut out = cli::Output::create(args.output.as_deref(), &[&args.input])?;
        let opts = DumpOptions {
            logical: args.logical,
            repair: args.repair,
            metadata_snap: args.metadata_snap,
        };
        // A failed dump leaves a previous file of the same name as it was.
        match dump(&io, &opts, &mut out) {
            Ok(problems) => {
                out.commit()?;
                cli::report_problems("era_dump", &args.input, &problems);
                Ok(EXIT_OK)
            }
            Err(e @ DumpError::Metadata(_)) => {
                Err(anyhow::Error::new(e).context(args.input.display().to_string()))
            }
            Err(e) => Err(anyhow::Error::new(e)),
        }
    })
}
