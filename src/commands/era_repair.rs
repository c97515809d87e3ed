//! era_repair: its command line and its run.

use std::ops::ControlFlow;

use super::era_files;
use crate::cli::open::refuse_input_as_output;
use crate::cli::report::{file_error, print_findings};
use crate::cli::{self, EXIT_OK};
use crate::era::build::needed_words;
use crate::era::repair::Repair;
use crate::interrupt::Guarded;
use crate::pdata::io::OpenMode;

/// The state an interrupted repair leaves its output in.
const UNFINISHED: &str = "the output holds an unfinished repair that no tool or kernel will \
load; run era_repair again";

era_writer! {
#[command(
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
    era_repair -i damaged.img -o fixed.img && era_check fixed.img",
    mut_args(era_files::input_help(
        "Damaged metadata device or file",
        "Opened read-only, and with O_EXCL when it is a block device."
    ))
)]
"era_repair" => repair
}

/// Writes a salvaged copy of the input's metadata to the output; the exit status tells the
/// outcome.
fn repair(args: &era_files::WriterArgs) -> anyhow::Result<u8> {
    let input = era_files::open_era_input(&args.input, OpenMode::ReadExclusive)?;
    if std::fs::metadata(&args.output).is_ok() {
        refuse_input_as_output(&args.output, &args.input)?;
    }
    let bar = era_files::block_progress(&input, "repairing metadata", args.quiet);
    let counted = cli::Counted::new(&input, &bar);
    // What the repair will write is known before the output is opened: its size tells
    // what a missing output needs, its geometry whether the output may be replaced.
    let prepared = (|| -> anyhow::Result<_> {
        let source = Repair::open(&counted).map_err(|e| args.on_its_file(e))?;
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
    let problems = match args.written(result, UNFINISHED)? {
        ControlFlow::Continue(problems) => problems,
        ControlFlow::Break(status) => return Ok(status),
    };
    if !args.quiet {
        print_findings("era_repair", &args.input, &problems);
    }
    Ok(EXIT_OK)
}
