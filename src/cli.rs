//! What every binary shares: exit codes, error reporting and output files.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::ExitCode;

use crate::pdata::io::{same_file, BlockIo, FileIo, OpenMode};
use crate::pdata::report::Problems;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for an error found in the data, in I/O or in the input files.
pub const EXIT_ERROR: u8 = 1;
/// Exit code for a command-line usage error (clap uses it too).
pub const EXIT_USAGE: u8 = 2;

/// Runs a tool's body and turns its outcome into an exit code. An error is printed as one
/// line on stderr (`tool: message: cause`), except a broken pipe on stdout, which ends the
/// tool quietly (`era_dump … | head`).
pub fn run(tool: &str, body: impl FnOnce() -> anyhow::Result<u8>) -> ExitCode {
    run_quiet(tool, false, body)
}

/// Like [`run`], but with `quiet` an error shows only in the exit code.
pub fn run_quiet(tool: &str, quiet: bool, body: impl FnOnce() -> anyhow::Result<u8>) -> ExitCode {
    match body() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if quiet || is_broken_pipe(&e) {
                return ExitCode::from(EXIT_ERROR);
            }
            eprintln!("{tool}: {}", one_line(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// An error and its causes on one line, each separated by `: `.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for (i, cause) in e.chain().enumerate() {
        let text = cause.to_string();
        if i > 0 {
            if s.ends_with(&text) {
                continue;
            }
            s.push_str(": ");
        }
        s.push_str(&text);
    }
    s.replace('\n', " ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Where a tool writes its report about `input`: stdout, or a file created (or truncated)
/// for it, which must not be the input.
pub fn output(path: Option<&Path>, input: &Path) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => {
            refuse_input_as_output(p, input)?;
            let f = File::create(p).map_err(|e| anyhow::anyhow!("output error: {e}"))?;
            Box::new(BufWriter::with_capacity(1 << 16, f))
        }
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout().lock())),
    })
}

fn refuse_input_as_output(output: &Path, input: &Path) -> anyhow::Result<()> {
    if same_file(output, input) {
        anyhow::bail!(
            "the output '{}' is the input; write to another device or file",
            output.display()
        );
    }
    Ok(())
}

/// Prints the problems found in `input` on stderr, one line each, `tool: input: problem`.
pub fn report_problems(tool: &str, input: &Path, problems: &Problems) {
    for p in problems.kept() {
        eprintln!("{tool}: {}: {p}", input.display());
    }
    if problems.dropped() > 0 {
        eprintln!(
            "{tool}: {}: … and {} more problems",
            input.display(),
            problems.dropped()
        );
    }
}

/// A progress bar of `len` bytes on stderr, or a hidden one when stderr is not a terminal
/// (scripts, logs) or the tool was asked to be quiet.
pub fn byte_progress(len: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !stderr_is_tty() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Whether stderr is a terminal, i.e. whether progress bars make sense.
pub fn stderr_is_tty() -> bool {
    use std::io::IsTerminal;
    io::stderr().is_terminal()
}

/// Opens a binary metadata input the way the era tools do, with the messages scripts grep
/// for: a missing file, a file of the wrong type, a file too small to be metadata, and XML
/// given where binary metadata was expected.
pub fn open_era_input(path: &Path, mode: OpenMode) -> anyhow::Result<FileIo> {
    let meta = std::fs::metadata(path)
        .map_err(|_| anyhow::anyhow!("Couldn't find input file '{}'", path.display()))?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_block_device() {
        anyhow::bail!("Not a block device or regular file '{}'.", path.display());
    }
    let io = FileIo::open(path, mode).map_err(|e| open_error(path, e))?;
    let head = if io.nr_blocks() > 0 {
        io.read_new(0)
            .map_err(|e| anyhow::anyhow!("{}: read error in block 0: {e}", path.display()))?
            .to_vec()
    } else {
        std::fs::read(path).unwrap_or_default()
    };
    if looks_like_xml(&head) {
        anyhow::bail!("This looks like XML.  This tool only supports the binary metadata format.");
    }
    if io.nr_blocks() == 0 {
        anyhow::bail!("Metadata device/file too small.  Is this binary metadata?");
    }
    Ok(io)
}

/// Opens the device or file a tool writes metadata to, with the messages scripts grep for:
/// it must already exist, be a regular file or a block device, not be the input, and not
/// be held open by anyone else (block devices are opened with `O_EXCL`).
pub fn open_era_output(path: &Path, input: &Path) -> anyhow::Result<FileIo> {
    let meta = std::fs::metadata(path)
        .map_err(|_| anyhow::anyhow!("Couldn't find output file '{}'", path.display()))?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_block_device() {
        anyhow::bail!("Not a block device or regular file '{}'.", path.display());
    }
    refuse_input_as_output(path, input)?;
    FileIo::open(path, OpenMode::Write).map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            anyhow::anyhow!(
                "{} is in use (is a live target holding it?); refusing to write to it",
                path.display()
            )
        } else {
            anyhow::anyhow!("{}: {e}", path.display())
        }
    })
}

fn open_error(path: &Path, e: io::Error) -> anyhow::Error {
    if e.raw_os_error() == Some(libc::EBUSY) {
        anyhow::anyhow!(
            "{} is in use (is a live target holding it?); read its held metadata snapshot \
             with --metadata-snap instead",
            path.display()
        )
    } else {
        anyhow::anyhow!("{}: {e}", path.display())
    }
}

/// Whether a file starts like XML (after optional white space): `<` and then a name, `?` or
/// `!`.
pub fn looks_like_xml(head: &[u8]) -> bool {
    let mut bytes = head.iter().skip_while(|b| b.is_ascii_whitespace());
    bytes.next() == Some(&b'<')
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'?' || *b == b'!')
}
