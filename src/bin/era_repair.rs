//! era_repair: writes a salvaged copy of damaged dm-era metadata.

use std::process::ExitCode;

use era_log_tools::cli::open::refuse_input_as_output;
use era_log_tools::cli::report::{file_error, on_side, print_findings, writer_error};
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::commands::era_files;
use era_log_tools::commands::era_repair::Args;
use era_log_tools::era::build::needed_words;
use era_log_tools::era::repair::Repair;
use era_log_tools::interrupt::{self, Guarded};
use era_log_tools::pdata::io::OpenMode;

/// The state an interrupted repair leaves its output in.
const UNFINISHED: &str = "the output holds an unfinished repair that no tool or kernel will \
load; run era_repair again";

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run_quiet("era_repair", args.quiet, || {
        interrupt::writing_to(&args.output.display().to_string());
        let input = era_files::open_era_input(&args.input, OpenMode::ReadExclusive)?;
        if std::fs::metadata(&args.output).is_ok() {
            refuse_input_as_output(&args.output, &args.input)?;
        }
        let bar = era_files::block_progress(&input, "repairing metadata", args.quiet);
        let counted = cli::Counted::new(&input, &bar);
        // What the repair will write is known before the output is opened: its size tells
        // what a missing output needs, its geometry whether the output may be replaced.
        let prepared = (|| -> anyhow::Result<_> {
            let source = Repair::open(&counted)
                .map_err(|e| on_side(e.side(), e, &args.input, &args.output))?;
            let needed = source.output_bytes_needed();
            let output =
                era_files::open_era_output(&args.output, &args.input, args.force, &mut || {
                    needed_words(needed)
                })?;
            output
                .accepts(&source.header(), "the input")
                .map_err(|refusal| file_error(&args.output, refusal))?;
            Ok((source, output))
        })();
        if prepared.is_err() {
            bar.finish_and_clear();
        }
        let (source, output) = prepared?;
        let result = source.write(&Guarded::new(&output.io));
        bar.finish_and_clear();
        if let Some(status) = interrupt::after_write(&args.output, &result, UNFINISHED) {
            return Ok(status);
        }
        let problems = result.map_err(|e| {
            writer_error(on_side(e.side(), e, &args.input, &args.output), UNFINISHED)
        })?;
        if !args.quiet {
            print_findings("era_repair", &args.input, &problems);
        }
        Ok(EXIT_OK)
    })
}
