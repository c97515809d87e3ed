//! What the era tools open: binary metadata in, with the words scripts grep for, and the
//! device or file era_restore and era_repair write, checked before they write.

use std::ops::ControlFlow;
use std::path::Path;

use crate::cli::open::{looks_like_xml, open_device, open_writer_output, refuse_unless, refusing};
use crate::cli::report::{file_error, on_side, writer_error};
use crate::era::format::superblock::{Superblock, SUPERBLOCK_LOCATION};
use crate::era::format::FORMAT;
use crate::era::live::LiveError;
use crate::era::sink::Summary;
use crate::identify::{probe, Content, State};
use crate::interrupt;
use crate::pdata::error::{Fault, Sided};
use crate::pdata::io::{BlockIo, FileIo, OpenMode};

/// What to do about a device someone holds, for the era tools' inputs.
const ERA_BUSY: &str = "read a live target's metadata with --live, or through its held \
                        snapshot with --metadata-snap";

/// How a reader opens binary metadata: exclusively, unless it reads the held metadata
/// snapshot, which a live target shares with it.
pub fn read_mode(metadata_snapshot: bool) -> OpenMode {
    if metadata_snapshot {
        OpenMode::ReadShared
    } else {
        OpenMode::ReadExclusive
    }
}

/// Opens a binary metadata input the way the era tools do, with the messages scripts grep
/// for: a missing file, a file of the wrong type, a file too small to be metadata, and XML
/// given where binary metadata was expected. When block 0 is not a dm-era superblock but
/// something we can name (zeros, a disk log, a filesystem, an interrupted restore), the
/// error says what it is.
pub fn open_era_input(path: &Path, mode: OpenMode) -> anyhow::Result<FileIo> {
    let io = open_device(path, mode, "input", ERA_BUSY)?;
    let head = if io.nr_blocks() > 0 {
        io.read_new(SUPERBLOCK_LOCATION)
            .map_err(|e| file_error(path, format!("read error in block 0: {e}")))?
            .to_vec()
    } else {
        std::fs::read(path).unwrap_or_default()
    };
    if looks_like_xml(&head) {
        return Err(file_error(
            path,
            "This looks like XML.  This tool only supports the binary metadata format.",
        ));
    }
    if io.nr_blocks() == 0 {
        return Err(file_error(
            path,
            "Metadata device/file too small.  Is this binary metadata?",
        ));
    }
    if let Err(fault) = Superblock::parse(&head, SUPERBLOCK_LOCATION) {
        let found = probe(&io).unwrap_or(Content::Unknown);
        if let Some(advice) = found.advice(&FORMAT) {
            let what = match fault {
                Fault::BadChecksum => "bad checksum in superblock".to_string(),
                other => other.to_string(),
            };
            return Err(file_error(
                path,
                format!("superblock at block 0: {what}; {advice}"),
            ));
        }
    }
    Ok(io)
}

/// The arguments of both era writers, era_restore and era_repair: the input, whose help
/// each tool gives ([`input_help`]: XML or metadata), the output, -q and --force.
#[derive(clap::Args)]
pub struct WriterArgs {
    /// What the writer reads
    #[arg(short, long, value_name = "FILE")]
    pub input: std::path::PathBuf,
    /// Device or pre-allocated file receiving the metadata
    ///
    /// Never the input. Refused when it holds data other than zeros or dm-era metadata of the
    /// same geometry, unless --force is given.
    #[arg(short, long, value_name = "FILE")]
    pub output: std::path::PathBuf,
    /// Print nothing; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
    /// Write even over what is neither zeros nor dm-era metadata of the same geometry
    ///
    /// Without it the output is refused when it holds another target's metadata (another
    /// block size or nr_blocks), damaged dm-era metadata, a filesystem, LVM, LUKS, swap, a
    /// partition table, a disk log, or data that is neither zeros nor a signature we know.
    #[arg(long)]
    pub force: bool,
}

/// What a writer's command does to its arguments to give its input's help: `help`, and
/// `more` after it in `--help` when not empty.
pub fn input_help(help: &'static str, more: &'static str) -> impl FnMut(clap::Arg) -> clap::Arg {
    move |arg| match arg.get_id() == "input" {
        true if more.is_empty() => arg.help(help),
        true => arg.help(help).long_help(format!("{help}\n\n{more}")),
        false => arg,
    }
}

impl WriterArgs {
    /// Runs `body`, the writer `tool`, with its messages (unless `-q`) and the state an
    /// interruption leaves told for this output.
    pub fn run(
        &self,
        tool: &'static str,
        body: impl FnOnce() -> anyhow::Result<u8>,
    ) -> std::process::ExitCode {
        super::run_writer(tool, self.quiet, &self.output, body)
    }

    /// What the run makes of the `result` of its write from the input to the output: its value
    /// to go on with; or, when a signal stopped the run, the exit status to end with (the
    /// state the output was left in said); or the error, on the file it is about, with the
    /// state `unfinished` when the output was touched.
    pub fn written<T, E: Sided>(
        &self,
        result: Result<T, E>,
        unfinished: &str,
    ) -> anyhow::Result<ControlFlow<u8, T>> {
        if let Some(status) = interrupt::after_write(&self.output, &result, unfinished) {
            return Ok(ControlFlow::Break(status));
        }
        match result {
            Ok(value) => Ok(ControlFlow::Continue(value)),
            Err(e) => Err(writer_error(self.on_its_file(e), unfinished)),
        }
    }

    /// Error `e` of the run, on the file it is about.
    pub fn on_its_file<E: Sided>(&self, e: E) -> anyhow::Error {
        on_side(e.side(), e, &self.input, &self.output)
    }
}

/// An era writer's output, opened and checked: it holds zeros, the marker of an interrupted
/// run, or dm-era metadata whose geometry is kept here for [`EraOutput::accepts`] (unless
/// `--force` was given).
pub struct EraOutput {
    /// The device or file.
    pub io: FileIo,
    /// Block size and `nr_blocks` of the dm-era metadata it holds.
    held: Option<(u32, u32)>,
}

impl EraOutput {
    /// Refuses to write metadata of `new`'s geometry over dm-era metadata of another (block
    /// size or `nr_blocks`): the metadata of another target. `source` says where `new`
    /// comes from ("the XML", "the input").
    pub fn accepts(&self, new: &Summary, source: &str) -> Result<(), String> {
        match self.held {
            Some((bs, nr)) if (bs, nr) != (new.block_size, new.nr_blocks) => Err(format!(
                "holds dm-era metadata of another target (block size {bs} sectors, {nr} \
                 blocks; {source} has {} sectors, {} blocks); {}",
                new.block_size,
                new.nr_blocks,
                refusing(&FORMAT)
            )),
            _ => Ok(()),
        }
    }
}

/// Opens the device or file era_restore or era_repair writes, which must exist (`need` tells
/// the size a missing one needs), be a regular file or a block device, differ from `input`
/// and be held by no one, and checks what it holds: zeros, the marker of our interrupted
/// run, or intact dm-era metadata, whose geometry [`EraOutput::accepts`] compares with what
/// is about to be written. Anything else is refused unless `force`.
pub fn open_era_output(
    path: &Path,
    input: &Path,
    force: bool,
    need: &mut dyn FnMut() -> String,
) -> anyhow::Result<EraOutput> {
    let io = open_writer_output(path, input, need)?;
    if force {
        return Ok(EraOutput { io, held: None });
    }
    let held = match refuse_unless(&io, path, &FORMAT, Content::replaceable_by)? {
        Content::Ours(_, State::Intact) => Some(era_geometry(&io).map_err(|what| {
            file_error(
                path,
                format!(
                    "holds damaged dm-era metadata ({what}), whose geometry cannot be read; \
                     {}",
                    refusing(&FORMAT)
                ),
            )
        })?),
        _ => None,
    };
    Ok(EraOutput { io, held })
}

/// Block size and `nr_blocks` from the superblock in block 0, or what is wrong with it.
fn era_geometry(io: &FileIo) -> Result<(u32, u32), String> {
    let head = io
        .read_new(SUPERBLOCK_LOCATION)
        .map_err(|e| format!("superblock at block 0: read error: {e}"))?;
    let sb = Superblock::parse(&head, SUPERBLOCK_LOCATION).map_err(|fault| match fault {
        Fault::BadChecksum => "bad checksum in superblock".to_string(),
        other => format!("superblock at block 0: {other}"),
    })?;
    Ok((sb.data_block_size, sb.nr_blocks))
}

/// A live session's error, as the reporter words it: about the device the user named.
pub fn live_error(e: LiveError) -> anyhow::Error {
    file_error(&e.device, e.what())
}

/// A progress bar of the metadata blocks a walk of `io` reads, labelled `phase`: as many as
/// the space map in block 0 says are in use, or every block when it cannot tell.
pub fn block_progress(io: &dyn BlockIo, phase: &str, quiet: bool) -> indicatif::ProgressBar {
    let in_use = || {
        io.read_new(SUPERBLOCK_LOCATION)
            .ok()
            .map(|b| Superblock::unpack(&b).sm_root.nr_allocated)
            .filter(|&n| n > 0 && n <= io.nr_blocks())
            .unwrap_or(io.nr_blocks())
    };
    crate::cli::progress::blocks_bar(in_use, phase, quiet)
}
