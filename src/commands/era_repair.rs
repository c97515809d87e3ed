//! era_repair: its command line and its run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::era_files;
use crate::cli::open::refuse_input_as_output;
use crate::cli::report::{file_error, on_side, print_findings, writer_error};
use crate::cli::{self, EXIT_OK};
use crate::era::build::needed_words;
use crate::era::repair::Repair;
use crate::interrupt::{self, Guarded};
use crate::pdata::io::OpenMode;

/// The state an interrupted repair leaves its output in.
const UNFINISHED: &str = "the output holds an unfinished repair that no tool or kernel will \
load; run era_repair again";

/// The arguments of era_repair.
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
  truncate -s 64M fixed.img &&
    era_repair -i damaged.img -o fixed.img && era_check fixed.img"
)]
pub struct Args {
    /// Damaged metadata device or file
    ///
    /// Opened read-only, and with O_EXCL when it is a block device.
    #[arg(short, long, value_name = "FILE")]
    pub input: PathBuf,
    /// Another device or pre-allocated file receiving the repaired metadata
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// -q and --force, as both era writers take them
    #[command(flatten)]
    pub writer: super::era_files::WriterOptions,
}

parse_with_bare_version!(Args, main = run);

/// Writes a salvaged copy of the input's metadata to the output; the exit status tells the
/// outcome.
pub fn run(args: Args) -> ExitCode {
    super::run_writer("era_repair", args.writer.quiet, &args.output, || {
        let input = era_files::open_era_input(&args.input, OpenMode::ReadExclusive)?;
        if std::fs::metadata(&args.output).is_ok() {
            refuse_input_as_output(&args.output, &args.input)?;
        }
        let bar = era_files::block_progress(&input, "repairing metadata", args.writer.quiet);
        let counted = cli::Counted::new(&input, &bar);
        // What the repair will write is known before the output is opened: its size tells
        // what a missing output needs, its geometry whether the output may be replaced.
        let prepared = (|| -> anyhow::Result<_> {
            let source = Repair::open(&counted)
                .map_err(|e| on_side(e.side(), e, &args.input, &args.output))?;
            let needed = source.output_bytes_needed();
            let output = era_files::open_era_output(
                &args.output,
                &args.input,
                args.writer.force,
                &mut || needed_words(needed),
            )?;
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
        if !args.writer.quiet {
            print_findings("era_repair", &args.input, &problems);
        }
        Ok(EXIT_OK)
    })
}
