//! era_dump: writes dm-era metadata as XML.

use std::process::ExitCode;

use era_log_tools::cli::report::{file_error, print_findings};
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::commands::era_dump::Args;
use era_log_tools::commands::era_files;
use era_log_tools::era::dump::{dump, DumpError, DumpOptions};
use era_log_tools::era::live;
use era_log_tools::pdata::io::OpenMode;

fn main() -> ExitCode {
    let args = Args::parse();
    let input = args.source.name();
    cli::run_quiet("era_dump", args.quiet, || {
        let mode = if args.metadata_snap {
            OpenMode::ReadShared
        } else {
            OpenMode::ReadExclusive
        };
        let opts = DumpOptions {
            logical: args.logical,
            repair: args.repair,
            metadata_snap: args.metadata_snap,
        };
        let file = match &args.source.live {
            Some(_) => None,
            None => Some(era_files::open_era_input(&input, mode)?),
        };
        let mut out = cli::Output::create(args.output.as_deref(), &[&input])?;
        // A failed dump leaves a previous file of the same name as it was.
        let problems = match (&file, &args.source.live) {
            (Some(io), _) => {
                // A bar only when the XML goes to a file: on stdout it would cut into it.
                let to_file = args
                    .output
                    .as_deref()
                    .is_some_and(|p| !cli::output::is_stdout(p));
                let bar = era_files::block_progress(io, "dumping metadata", args.quiet || !to_file);
                let r = dump(&cli::Counted::new(io, &bar), &opts, &mut out);
                bar.finish_and_clear();
                r.map_err(|e| match e {
                    e @ DumpError::Metadata(_) => file_error(&input, e),
                    e => anyhow::Error::new(e),
                })?
            }
            (None, device) => {
                let device = device.as_deref().unwrap_or_default();
                live::dump_snapshot(device, &args.source.options(), &opts, &mut out)
                    .map_err(era_files::live_error)?
                    .0
            }
        };
        out.commit()?;
        if !args.quiet {
            print_findings("era_dump", &input, &problems);
        }
        Ok(EXIT_OK)
    })
}
