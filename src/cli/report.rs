//! The one voice of the suite: every line a tool prints on stderr is made here, in one
//! grammar,
//!
//! ```text
//! TOOL: FILE: SEVERITY: STRUCTURE: what[; what to do]
//! ```
//!
//! for the findings of a check or a dump ([`Problem`]s) and for the error that ends a run
//! (`SEVERITY` is then `error`). `FILE` is the file or device the line is about; an error
//! carries it as an [`OnFile`] context, so that the binaries do not have to know which of
//! their paths an error concerns.

use std::fmt;
use std::path::Path;

use super::output::OutputFailure;
use crate::json::Object;
use crate::pdata::error::Side;
use crate::pdata::report::{plural, Problem, Problems, Severity};

/// The file or device an error is about: attached as an `anyhow` context, it becomes the
/// `FILE` of the error's line.
#[derive(Debug)]
pub struct OnFile(pub String);

impl fmt::Display for OnFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Attaches the file an error is about.
pub trait OnFileExt<T> {
    /// The error, about `path`.
    fn on_file(self, path: impl AsRef<Path>) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> OnFileExt<T> for Result<T, E> {
    fn on_file(self, path: impl AsRef<Path>) -> anyhow::Result<T> {
        self.map_err(|e| {
            e.into()
                .context(OnFile(path.as_ref().display().to_string()))
        })
    }
}

/// An error about `path`, in words.
pub fn file_error(path: impl AsRef<Path>, what: impl fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{what}").context(OnFile(path.as_ref().display().to_string()))
}

/// A writer's error, about its `input` or its `output` as the error says.
pub fn on_side<E>(side: Side, e: E, input: &Path, output: &Path) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    let file = match side {
        Side::Input => input,
        Side::Output => output,
        Side::Own => return anyhow::Error::new(e),
    };
    anyhow::Error::new(e).context(OnFile(file.display().to_string()))
}

/// The line that reports the error ending a run.
pub fn error_line(tool: &str, e: &anyhow::Error) -> String {
    match error_parts(e) {
        (Some(f), what) => format!("{tool}: {}: error: {what}", one_line(&f)),
        (None, what) => format!("{tool}: error: {what}"),
    }
}

/// What went wrong, as the error's line says it after `TOOL: FILE: error: `: for the JSON
/// of a run that failed.
pub fn error_message(e: &anyhow::Error) -> String {
    error_parts(e).1
}

/// `e`, with what it left behind (`state`) said after what went wrong, about the same file.
pub fn with_state(e: anyhow::Error, state: &str) -> anyhow::Error {
    match error_parts(&e) {
        (Some(file), what) => file_error(file, format!("{what}; {state}")),
        (None, what) => anyhow::anyhow!("{what}; {state}"),
    }
}

/// A writer's error `e`: after its first write, with the state it left the output in
/// (`unfinished`), which every reader would name too.
pub fn writer_error(e: anyhow::Error, unfinished: &str) -> anyhow::Error {
    match crate::interrupt::output_touched() {
        true => with_state(e, unfinished),
        false => e,
    }
}

/// The file an error is about (a context's, else the output a failed write was to) and
/// what went wrong, as one line.
fn error_parts(e: &anyhow::Error) -> (Option<String>, String) {
    let file = e.downcast_ref::<OnFile>().map(|f| f.0.clone()).or_else(|| {
        e.chain().find_map(|c| {
            let io = c.downcast_ref::<std::io::Error>()?;
            let failure = io.get_ref()?.downcast_ref::<OutputFailure>()?;
            Some(failure.name.clone())
        })
    });
    let mut what = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if Some(&text) == file.as_ref() {
            continue;
        }
        // A cause whose text its context already quotes adds nothing.
        if text.is_empty() || what.ends_with(&text) {
            continue;
        }
        if !what.is_empty() {
            what.push_str(": ");
        }
        what.push_str(&text);
    }
    (file, what.replace('\n', " "))
}

/// The line that reports one finding about `file`.
pub fn finding_line(tool: &str, file: &str, p: &Problem) -> String {
    format!("{tool}: {}: {p}", one_line(file))
}

/// A file name as a line names it: a newline in it (a name can hold one) is written `\n`,
/// so that every message stays one line.
fn one_line(file: &str) -> String {
    file.replace('\n', "\\n")
}

/// Prints the findings about `file`, one line each, and a last line counting those that
/// were not kept.
pub fn print_findings(tool: &str, file: &Path, problems: &Problems) {
    let f = file.display().to_string();
    for p in problems.kept() {
        super::say(&finding_line(tool, &f, p));
    }
    if problems.dropped() > 0 {
        super::say(&format!(
            "{tool}: {f}: note: … and {} more",
            plural(problems.dropped(), "problem")
        ));
    }
}

/// Writes on stdout, as one line, the JSON object of a run that failed: the tool's own
/// `fields` first, then `error`, what went wrong in the words of the error line after
/// `TOOL: FILE: error: ` (docs/messages.md).
pub fn failure_json(
    fields: impl FnOnce(&mut Object<'_>) -> std::io::Result<()>,
    what: &str,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    {
        let mut o = Object::begin(&mut out)?;
        fields(&mut o)?;
        o.field("error", what)?.end()?;
    }
    std::io::Write::write_all(&mut out, b"\n")
}

/// Writes the findings about `file` as one JSON object on one line: the file (unknown after
/// a usage error), the worst severity, every finding (`pdata::report` gives each one's
/// fields), and what ended the run early, if something did (then `worst` is `error` and the
/// findings are those made before it).
pub fn findings_json(
    out: &mut dyn std::io::Write,
    file: Option<&Path>,
    problems: &Problems,
    failure: Option<&str>,
) -> std::io::Result<()> {
    let worst = match failure {
        Some(_) => Some(Severity::Error.to_string()),
        None => problems.worst().map(|s: Severity| s.to_string()),
    };
    Object::begin(out)?
        .field("file", file.map(|f| f.display().to_string()))?
        .field("worst", worst)?
        .field("dropped", problems.dropped())?
        .list("findings", problems.kept())?
        .field("error", failure)?
        .end()?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::error::{Error, Fault};

    #[test]
    fn an_error_names_its_file_once_on_one_line_and_says_error() {
        for (tool, file, msg, want) in [
            (
                "era_check",
                Some("meta.img"),
                "superblock at block 0: bad checksum",
                "era_check: meta.img: error: superblock at block 0: bad checksum",
            ),
            (
                "log_repair",
                None,
                "--nr-regions 3 disagrees",
                "log_repair: error: --nr-regions 3 disagrees",
            ),
            // A newline in the file's name would split the line.
            (
                "era_check",
                Some("a\nb.img"),
                "Permission denied",
                "era_check: a\\nb.img: error: Permission denied",
            ),
        ] {
            let mut e = anyhow::anyhow!("{msg}");
            if let Some(f) = file {
                e = Err::<(), _>(e).on_file(f).unwrap_err();
            }
            assert_eq!(error_line(tool, &e), want);
        }
    }

    #[test]
    fn a_finding_is_one_line_with_its_hint() {
        let p = Problem {
            severity: Severity::Warning,
            error: Error::structure("clean bitmap", Fault::Invalid("3 stray bits".into())),
            hint: Some("log_repair --clear-stray-bits clears them".into()),
        };
        assert_eq!(
            finding_line("log_dump", "log.img", &p),
            "log_dump: log.img: warning: clean bitmap: 3 stray bits; log_repair \
             --clear-stray-bits clears them"
        );
    }
}
