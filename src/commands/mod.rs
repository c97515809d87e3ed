//! The command line of every tool, as clap definitions. The binaries parse their arguments
//! with these; the man pages and shell completions are generated from the same definitions
//! (`cargo run --example gen_docs`), so the documentation cannot drift from the options.

use std::io::Write;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Command, CommandFactory, Parser};

/// Gives a tool's `Args` an inherent `parse` (which takes precedence over
/// [`Parser::parse`]) that prints the bare version; see [`parse`]. With `main = run`, also
/// the tool's `main`, for a tool whose usage errors print no JSON: `run` on the parsed
/// arguments.
macro_rules! parse_with_bare_version {
    ($args:ty) => {
        impl $args {
            /// Parses the process's arguments; `-V`/`--version` prints the bare version.
            pub fn parse() -> Self {
                super::parse()
            }
        }
    };
    ($args:ty, main = $run:ident) => {
        parse_with_bare_version!($args);

        /// The tool on the process's arguments; usage errors end the process (exit status
        /// 2).
        pub fn main() -> std::process::ExitCode {
            $run(<$args>::parse())
        }
    };
}

/// Declares an era writer's command (era_restore, era_repair), whose arguments are
/// [`era_files::WriterArgs`] under the tool's own texts (the `#[command]` attributes given,
/// the input's help among them): its `Args`, its `main`, and its `run`, which runs `$body`
/// (`fn(&WriterArgs) -> anyhow::Result<u8>`) as the writer `$tool`.
macro_rules! era_writer {
    ($(#[$attr:meta])* $tool:literal => $body:path) => {
        #[doc = concat!("The arguments of ", $tool, ".")]
        #[derive(clap::Parser)]
        #[command(name = $tool)]
        $(#[$attr])*
        pub struct Args {
            /// -i, -o, -q and --force, as both era writers take them
            #[command(flatten)]
            pub files: super::era_files::WriterArgs,
        }

        parse_with_bare_version!(Args, main = run);

        #[doc = concat!("Runs ", $tool, " on `args`; the exit status tells the outcome.")]
        pub fn run(args: Args) -> std::process::ExitCode {
            args.files.run($tool, || $body(&args.files))
        }
    };
}

/// Implements [`clap::ValueEnum`] for an enum of the library, which cannot derive it (the
/// library's formats know nothing of clap): each variant with its name and its help, in
/// the order `--help` lists them. One list serves both methods, so they cannot disagree.
macro_rules! value_enum {
    ($(#[$doc:meta])* $t:ident { $($v:ident => $name:literal, $help:expr;)+ }) => {
        $(#[$doc])*
        impl clap::ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($t::$v),+]
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(match self {
                    $($t::$v => clap::builder::PossibleValue::new($name).help($help),)+
                })
            }
        }
    };
}

pub mod era_check;
pub mod era_dump;
pub mod era_files;
pub mod era_invalidate;
pub mod era_metadata_size;
pub mod era_repair;
pub mod era_restore;
pub mod log_dump;
pub mod log_files;
pub mod log_repair;
pub mod log_restore;

/// Every tool of the suite, in the order the documentation lists them. Each command's name
/// (`Command::get_name`) is the binary's name. A new tool adds its module above and a line
/// here.
pub fn all() -> Vec<Command> {
    vec![
        era_check::Args::command(),
        era_dump::Args::command(),
        era_invalidate::Args::command(),
        era_metadata_size::Args::command(),
        era_repair::Args::command(),
        era_restore::Args::command(),
        log_dump::Args::command(),
        log_repair::Args::command(),
        log_restore::Args::command(),
    ]
}

/// `--format` of the tools whose output is a report: for people, or for scripts.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Lines for people
    Text,
    /// One JSON object on one line, for scripts
    Json,
}

/// What a reader reads: a metadata device or file, or with `--live` (and what goes with it)
/// a live target through a snapshot it takes itself. Shared by era_check, era_dump and
/// era_invalidate.
#[derive(clap::Args)]
pub struct Source {
    /// Metadata device or file
    #[arg(
        value_name = "INPUT",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    pub input: Option<PathBuf>,
    /// Read the live era target DM_NAME through a metadata snapshot taken and dropped for this
    /// run
    ///
    /// DM_NAME is a device-mapper name, or the path of its node such as /dev/mapper/era0. In
    /// one step: the metadata device is found from the target's table, a metadata snapshot is
    /// taken (take_metadata_snap), read through the root the status line shows (checked
    /// against the superblock's metadata_snap; no O_EXCL, O_DIRECT), and dropped
    /// (drop_metadata_snap) on every way out: success, error, SIGINT, SIGTERM or SIGHUP.
    /// SIGKILL cannot be caught: a killed run leaves its snapshot held, and the next run
    /// refuses until it is dropped. A snapshot held by someone else is refused, naming its
    /// root. Refused with one line and exit 1: no such device, a target that is not one era
    /// target, a suspended target (the kernel would not answer until it is resumed), missing
    /// permissions (device-mapper needs root).
    #[arg(long, value_name = "DM_NAME")]
    pub live: Option<String>,
    /// With --live: send checkpoint before taking the snapshot, and take the era from the
    /// status line after it
    #[arg(long, requires = "live", conflicts_with = "input")]
    pub checkpoint: bool,
    /// With --live: read the snapshot someone else holds instead of refusing, and leave it
    /// held
    #[arg(long, requires = "live", conflicts_with = "input")]
    pub use_held_snapshot: bool,
}

impl Source {
    /// The name errors are reported under: the input, or the live target's name.
    pub fn name(&self) -> PathBuf {
        match (&self.input, &self.live) {
            (Some(input), _) => input.clone(),
            (None, live) => PathBuf::from(live.clone().unwrap_or_default()),
        }
    }

    /// The session options these arguments ask for; signals are handled (a tool's process).
    pub fn options(&self) -> crate::era::live::LiveOptions {
        crate::era::live::LiveOptions {
            checkpoint: self.checkpoint,
            use_held_snapshot: self.use_held_snapshot,
            handle_signals: true,
        }
    }
}

/// Runs a writer's body as [`crate::cli::run_quiet`] does, `output` declared first as what
/// it writes, so that a signal's message names it ([`crate::interrupt::writing_to`]).
pub fn run_writer(
    tool: &'static str,
    quiet: bool,
    output: &std::path::Path,
    body: impl FnOnce() -> anyhow::Result<u8>,
) -> std::process::ExitCode {
    crate::cli::run_quiet(tool, quiet, || {
        crate::interrupt::writing_to(&output.display().to_string());
        body()
    })
}

/// The version `-V`/`--version` prints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Parses the process's arguments like [`Parser::parse`], in the suite's voice:
///
/// - `-V`/`--version` prints the bare version number (`1.0.0`) instead of clap's
///   `name 1.0.0`: clients of thin-provisioning-tools parse the output of `era_check -V` as
///   X.Y.Z.
/// - `--help` prints the examples (the command's `after_help`) as they are written: clap
///   would wrap them at the terminal's width, in the middle of a command, so that a pasted
///   example would run something else. A terminal that soft-wraps a long line keeps it one
///   line when copied.
/// - A usage error is one line in the grammar `TOOL: error: what` (clap's own lines of usage
///   and tips follow), exit status 2.
pub fn parse<A: Parser>() -> A {
    parse_with(&|_| {})
}

/// Like [`parse`], for a tool whose output a script parses: when the command line asks for
/// `--format json`, a usage error is first handed to `json_failure` (what is wrong, as the
/// error line says it after `TOOL: error: `), to be written as the tool's JSON object on
/// stdout.
pub fn parse_with<A: Parser>(json_failure: &dyn Fn(&str)) -> A {
    let mut cmd = A::command();
    let examples = cmd.get_after_help().map(|h| h.to_string());
    cmd = cmd.after_help(clap::builder::Resettable::Reset);
    let parsed = cmd
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|m| A::from_arg_matches(&m));
    match parsed {
        Ok(args) => args,
        Err(e) if e.kind() == ErrorKind::DisplayVersion => {
            let _ = writeln!(std::io::stdout(), "{VERSION}");
            std::process::exit(0)
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelp => {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{e}");
            if let Some(examples) = examples {
                let _ = writeln!(out, "\n{examples}");
            }
            std::process::exit(0)
        }
        Err(e) => {
            let tool = cmd.get_name().to_string();
            exit_usage(&tool, e.format(&mut cmd), json_failure)
        }
    }
}

/// The arguments `line` parses to, for the tools' tests, which have no process arguments
/// to parse; a line that does not parse fails the test.
#[cfg(test)]
fn parsed<A: Parser>(line: &[&str]) -> A {
    A::try_parse_from(line).unwrap()
}

/// Ends the process on a usage error of tool `A` found after parsing (options that
/// contradict each other in a way clap cannot express): `TOOL: error: msg`, exit status 2.
pub fn usage_error<A: CommandFactory>(msg: impl std::fmt::Display) -> ! {
    usage_error_with::<A>(msg, &|_| {})
}

/// Like [`usage_error`], with the tool's JSON failure as [`parse_with`] takes it.
pub fn usage_error_with<A: CommandFactory>(
    msg: impl std::fmt::Display,
    json_failure: &dyn Fn(&str),
) -> ! {
    let mut cmd = A::command();
    let e = cmd.error(ErrorKind::ArgumentConflict, msg);
    exit_usage(cmd.get_name(), e, json_failure)
}

fn exit_usage(tool: &str, e: clap::Error, json_failure: &dyn Fn(&str)) -> ! {
    let text = e.render().to_string();
    // Not onto a closed stdout or a disk: the one check every report's stdout passes.
    if asks_for_json() && crate::cli::output::require_stdout().is_ok() {
        // clap's first paragraph, which may go on over lines (the arguments missing).
        let first = text.split("\n\n").next().unwrap_or_default();
        let what = first.strip_prefix("error: ").unwrap_or(first);
        json_failure(&what.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    let _ = write!(std::io::stderr().lock(), "{tool}: {text}");
    std::process::exit(e.exit_code())
}

/// Whether the command line asks for `--format json` (arguments that are not UTF-8 are
/// compared as they are, never converted).
fn asks_for_json() -> bool {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    args.windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--format=json")
}
