//! era_restore: its command line and its run.

use std::ops::ControlFlow;
use std::path::Path;

use super::era_files;
use crate::cli::open::open_text_input;
use crate::cli::{self, Counted, EXIT_OK};
use crate::era::build::{needed_words, BuildError};
use crate::era::restore::{output_bytes_needed, restore_onto, RestoreError, Step};
use crate::era::xml::read::ParseOptions;
use crate::interrupt::Guarded;
/// The state an interrupted restore leaves its output in.
const UNFINISHED: &str = "the output holds an unfinished restore that no tool or kernel will \
load; run era_restore again";

/// What a missing output is told when the XML comes from a pipe, read only once.
const NEED_FROM_A_PIPE: &str = "create it first: era_metadata_size --nr-blocks N --writesets W \
tells the size for the XML's nr_blocks N and its W writesets (at least 40960 bytes)";

era_writer! {
#[command(
    version,
    about = "Restore dm-era metadata from XML",
    long_about = "Restore dm-era metadata from the XML of era_dump (one <bit> per block, or \
compact <marked block_begin len> ranges; bits in any order). The input is read once, so it \
may be a pipe (-i -). The whole input is checked before anything is written; an error names \
its line and column. Meanwhile the writesets (one bit per origin block each) and the era \
array (4 bytes per origin block) wait in unnamed temporary files in $TMPDIR (else /tmp). The output must already exist and be at least 40960 \
bytes; block 0 is written last.",
    after_help = "Exit status: 0 success, 1 error, 2 usage error.

Examples:
  era_restore -i era.xml -o /dev/vg/era-meta
  zcat era.xml.gz | era_restore -i - -o /dev/vg/era-meta
  truncate -s 64M new-meta.img && era_restore -i era.xml -o new-meta.img",
    mut_args(era_files::input_help("XML input: a file, a pipe, or - for stdin", ""))
)]
"era_restore" => restore
}

/// Writes the metadata the XML input describes to the output; the exit status tells the
/// outcome.
fn restore(args: &era_files::WriterArgs) -> anyhow::Result<u8> {
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
    let result = result.map_err(|e| whole_size(e, len.is_some(), &args.input));
    match args.written(result, UNFINISHED)? {
        ControlFlow::Continue(()) => Ok(EXIT_OK),
        ControlFlow::Break(status) => Ok(status),
    }
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
