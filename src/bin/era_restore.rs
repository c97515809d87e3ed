//! era_restore: writes dm-era metadata from XML.

use std::path::Path;
use std::process::ExitCode;

use era_log_tools::cli::open::open_text_input;
use era_log_tools::cli::report::{on_side, writer_error};
use era_log_tools::cli::{self, Counted, EXIT_OK};
use era_log_tools::commands::era_files;
use era_log_tools::commands::era_restore::Args;
use era_log_tools::era::build::{needed_words, BuildError};
use era_log_tools::era::restore::{output_bytes_needed, restore_onto, RestoreError, Step};
use era_log_tools::era::xml::read::ParseOptions;
use era_log_tools::interrupt::{self, Guarded};

/// The state an interrupted restore leaves its output in.
const UNFINISHED: &str = "the output holds an unfinished restore that no tool or kernel will \
load; run era_restore again";

/// What a missing output is told when the XML comes from a pipe, read only once.
const NEED_FROM_A_PIPE: &str = "create it first: era_metadata_size --nr-blocks N --writesets W \
tells the size for the XML's nr_blocks N and its W writesets (at least 40960 bytes)";

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run_quiet("era_restore", args.quiet, || {
        interrupt::writing_to(&args.output.display().to_string());
        let (input, len) = open_text_input(&args.input, "era_dump")?;
        // A missing output is told its size from a second reading of an XML file; a pipe is
        // not read for it, as it could be long or wait on a terminal.
        let out = era_files::open_era_output(&args.output, &args.input, args.force, &mut || {
            if len.is_none() {
                return NEED_FROM_A_PIPE.into();
            }
            match bytes_needed(&args.input) {
                Some(bytes) => needed_words(bytes),
                None => "create it first (its size depends on the XML, which is not valid)".into(),
            }
        })?;
        let reading = match len {
            Some(len) => cli::byte_progress(len, args.quiet),
            None => cli::stream_progress("checking XML", args.quiet),
        };
        reading.set_message("checking XML");
        let writing = cli::pending_blocks_bar("writing metadata");
        let guarded = Guarded::new(&out.io);
        let result = restore_onto(
            input,
            &Counted::new(&guarded, &writing),
            &|header| out.accepts(header, "the XML"),
            &ParseOptions::default(),
            &|step| match step {
                Step::Checked(n) => reading.inc(n),
                Step::Writing(blocks) => {
                    reading.finish_and_clear();
                    cli::start_blocks_bar(&writing, blocks, args.quiet);
                }
            },
        );
        reading.finish_and_clear();
        writing.finish_and_clear();
        if let Some(status) = interrupt::after_write(&args.output, &result, UNFINISHED) {
            return Ok(status);
        }
        let result = result.map_err(|e| whole_size(e, len.is_some(), &args.input));
        result.map_err(|e| {
            writer_error(on_side(e.side(), e, &args.input, &args.output), UNFINISHED)
        })?;
        Ok(EXIT_OK)
    })
}

/// An output found too small while the XML was being checked is told the size the whole XML
/// needs: the check stops at the first writeset that does not fit, and the size known then
/// counts only the writesets before it. An XML file is read a second time for the size; a
/// pipe, read once, is told how to work it out.
fn whole_size(e: RestoreError, is_file: bool, input: &Path) -> RestoreError {
    let available = match &e {
        RestoreError::Build(
            BuildError::TooSmall { available, .. } | BuildError::BelowMinimum { available, .. },
        ) => *available,
        _ => return e,
    };
    if !is_file {
        return RestoreError::TooSmallUnsized { available };
    }
    match bytes_needed(input) {
        Some(min_bytes) => RestoreError::Build(BuildError::TooSmall {
            min_bytes,
            available,
        }),
        None => e,
    }
}

/// The size an output needs for the XML file `input`, from a reading of its own (see
/// `output_bytes_needed`); `None` when the XML cannot be read for it.
fn bytes_needed(input: &Path) -> Option<Option<u64>> {
    let (xml, _) = open_text_input(input, "era_dump").ok()?;
    output_bytes_needed(xml).ok()
}
