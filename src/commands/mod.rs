//! The command line of every tool, as clap definitions. The binaries parse their arguments
//! with these; the man pages and shell completions are generated from the same definitions
//! (`cargo run --example gen_docs`), so the documentation cannot drift from the options.

use std::io::Write;

use clap::error::ErrorKind;
use clap::{Command, CommandFactory, Parser};

/// Gives a tool's `Args` an inherent `parse` (which takes precedence over
/// [`Parser::parse`]) that prints the bare version; see [`parse`].
macro_rules! parse_with_bare_version {
    ($args:ty) => {
        impl $args {
            /// Parses the process's arguments; `-V`/`--version` prints the bare version.
            pub fn parse() -> Self {
                super::parse()
            }
        }
    };
}

pub mod era_check;
pub mod era_dump;
pub mod era_invalidate;
pub mod era_repair;
pub mod era_restore;
pub mod log_dump;
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
        era_repair::Args::command(),
        era_restore::Args::command(),
        log_dump::Args::command(),
        log_repair::Args::command(),
        log_restore::Args::command(),
    ]
}

/// The version `-V`/`--version` prints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Parses the process's arguments like [`Parser::parse`], except that `-V`/`--version`
/// prints the bare version number (`0.1.0`) instead of clap's `name 0.1.0`: clients of
/// thin-provisioning-tools parse the output of `era_check -V` as X.Y.Z.
pub fn parse<A: Parser>() -> A {
    match A::try_parse() {
        Ok(args) => args,
        Err(e) if e.kind() == ErrorKind::DisplayVersion => {
            let _ = writeln!(std::io::stdout(), "{VERSION}");
            std::process::exit(0)
        }
        Err(e) => e.exit(),
    }
}
