//! The examples of the log tools' --help paste correctly at any terminal width: clap wraps
//! the text after the options at the width it finds (COLUMNS when stdout is not a
//! terminal), so each example command line must be short enough never to be cut.

mod common;

use clap::CommandFactory;
use common::{command, outcome};
use era_log_tools::commands::{log_dump, log_repair, log_restore};

/// The example command lines of a help text: the lines that start a command (after the
/// indentation, a tool's name or a shell command) and the lines that continue one.
fn command_lines(examples: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut continued = false;
    for line in examples.lines() {
        let t = line.trim_start();
        let starts = ["log_", "truncate "].iter().any(|p| t.starts_with(p));
        if continued || starts {
            lines.push(line.to_string());
        }
        continued = (continued || starts) && t.ends_with('\\');
    }
    lines
}

#[test]
fn help_examples_are_never_cut_by_the_terminal_width() {
    let tools = [
        log_dump::Args::command(),
        log_repair::Args::command(),
        log_restore::Args::command(),
    ];
    for cmd in tools {
        let name = cmd.get_name().to_string();
        let source = cmd.get_after_help().expect("examples").to_string();
        let examples = command_lines(&source);
        assert!(examples.len() >= 3, "{name}: {examples:?}");
        for width in [40, 80, 200] {
            let out = outcome(
                command(&name)
                    .arg("--help")
                    .env("COLUMNS", width.to_string()),
            );
            assert!(out.success());
            let help = out.stdout;
            let shown: Vec<&str> = help.lines().collect();
            for line in &examples {
                assert!(
                    shown.contains(&line.as_str()),
                    "{name} --help at {width} columns cuts the example line {line:?}:\n{help}"
                );
            }
            // Every command of the help ends on a line without a continuation, and no
            // command line of the help is missing from the source.
            assert_eq!(
                command_lines(help.split_once("Examples:").unwrap().1),
                examples
            );
        }
    }
}
