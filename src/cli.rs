//! What every binary shares: exit codes, error reporting and output files.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

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
    match body() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
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

/// Where a tool writes its report: stdout, or a file created (or truncated) for it.
pub fn output(path: Option<&Path>) -> io::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::with_capacity(1 << 16, File::create(p)?)),
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout().lock())),
    })
}

/// Whether stderr is a terminal, i.e. whether progress bars make sense.
pub fn stderr_is_tty() -> bool {
    use std::io::IsTerminal;
    io::stderr().is_terminal()
}
