//! The generated documentation (man pages, shell completions) matches the clap definitions,
//! every man page passes a roff linter, and the tools, binaries and hand-written man page
//! sections agree.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{command, every_tools_help, outcome, root, try_outcome};
use era_log_tools::commands;

mod common;

#[path = "../examples/gen_docs/docs.rs"]
mod docs;

/// The stems of the files in `dir` (relative to the root) whose names end with `suffix`.
fn stems(dir: &str, suffix: &str) -> BTreeSet<String> {
    fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
        .collect()
}

#[test]
fn generated_files_are_up_to_date() {
    let files = docs::generate(root()).unwrap();
    let mut stale: Vec<PathBuf> = files
        .iter()
        .filter(|f| fs::read(root().join(&f.path)).ok().as_ref() != Some(&f.content))
        .map(|f| f.path.clone())
        .collect();
    stale.extend(docs::strays(root(), &files));
    assert!(
        stale.is_empty(),
        "out of date with the clap definitions or man/sections: {}\nregenerate them with `{}` \
         and commit the result",
        stale
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        docs::REGENERATE
    );
}

#[test]
fn every_tool_has_its_binary_and_man_page_sections() {
    let tools: BTreeSet<String> = commands::all()
        .iter()
        .map(|c| c.get_name().to_owned())
        .collect();
    let mut binaries = stems("src/bin", ".rs");
    binaries.extend(
        fs::read_dir(root().join("src/bin"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("main.rs").is_file())
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned()),
    );
    assert_eq!(
        tools, binaries,
        "every binary in src/bin has its command line in src/commands, listed by \
         commands::all()"
    );
    assert_eq!(
        tools,
        stems(docs::SECTIONS_DIR, ".roff"),
        "every tool has the hand-written sections of its man page in {}",
        docs::SECTIONS_DIR
    );
}

/// The long options named in `text` (`--name`, or `\-\-name` in roff).
fn long_options(text: &str) -> Vec<String> {
    let text = text.replace(r"\-", "-");
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("--") {
        rest = &rest[i + 2..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
    }
    found
}

/// Each option the hand-written man page sections and the help texts name is an option of
/// the tool, unless the line is about another tool of the suite.
#[test]
fn hand_written_text_names_only_real_options() {
    let all = commands::all();
    let names: Vec<&str> = all.iter().map(|c| c.get_name()).collect();
    let mut wrong = Vec::new();
    for cmd in &all {
        let name = cmd.get_name();
        let mut known: BTreeSet<String> = ["help", "version"].map(String::from).into();
        for arg in cmd.get_arguments() {
            known.extend(arg.get_long().map(String::from));
            known.extend(
                arg.get_all_aliases()
                    .unwrap_or_default()
                    .into_iter()
                    .map(String::from),
            );
        }
        let sections =
            fs::read_to_string(root().join(docs::SECTIONS_DIR).join(format!("{name}.roff")))
                .unwrap();
        let mut texts = vec![sections];
        texts.extend(cmd.get_long_about().map(|s| s.to_string()));
        texts.extend(cmd.get_after_help().map(|s| s.to_string()));
        for arg in cmd.get_arguments() {
            texts.extend(arg.get_long_help().map(|s| s.to_string()));
        }
        for line in texts.iter().flat_map(|t| t.lines()) {
            let roff_comment = line.starts_with(r#".\""#);
            if roff_comment || names.iter().any(|n| *n != name && line.contains(n)) {
                continue;
            }
            for option in long_options(line) {
                if !known.contains(&option) {
                    wrong.push(format!("{name}: --{option} in: {line}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "options that do not exist:\n{}",
        wrong.join("\n")
    );
}

/// Runs a linter on a page: `None` when the linter is not installed, else what it reported
/// (empty when the page is clean).
fn lint(program: &str, args: &[&str], page: &Path) -> Option<String> {
    let out = match try_outcome(Command::new(program).args(args).arg(page)) {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("{program}: {e}"),
    };
    let mut report = out.stdout;
    report.push_str(&out.stderr);
    if out.code != 0 && report.is_empty() {
        report = format!("{program} exited with {}", out.code);
    }
    Some(report)
}

/// mandoc (warnings and errors; style remarks such as long source lines are not defects) and
/// groff with every warning. CI installs mandoc (.ci/run) and fails without it.
#[test]
fn man_pages_pass_the_linters() {
    let pages: Vec<PathBuf> = stems("man", ".8")
        .into_iter()
        .map(|s| root().join(format!("man/{s}.8")))
        .collect();
    assert_eq!(pages.len(), commands::all().len());
    let mut ran_mandoc = false;
    let mut problems = Vec::new();
    for page in &pages {
        for (program, args) in [
            ("mandoc", &["-T", "lint", "-W", "warning"][..]),
            ("groff", &["-ww", "-z", "-man"][..]),
        ] {
            match lint(program, args, page) {
                Some(report) if !report.is_empty() => problems.push(report),
                Some(_) => ran_mandoc |= program == "mandoc",
                None => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if !ran_mandoc {
        assert!(
            std::env::var_os("CI").is_none(),
            "mandoc is not installed: CI must lint the man pages (apt-get install mandoc)"
        );
        eprintln!("mandoc is not installed: the man pages were not linted with it");
    }
}

#[test]
fn every_tools_help_shows_examples_of_itself() {
    for (name, help) in every_tools_help() {
        let name = name.as_str();
        let examples = help
            .split_once("Examples:")
            .unwrap_or_else(|| panic!("{name} --help has no Examples:\n{help}"))
            .1;
        let runs = examples
            .lines()
            .filter(|l| l.trim_start().contains(name))
            .count();
        assert!(
            runs >= 1,
            "{name} --help shows no example of itself:\n{examples}"
        );
    }
}

/// The examples of `--help` are printed as written, whatever the terminal's width: clap
/// would wrap them in the middle of a command, and a pasted example would run something
/// else. Their lines are short enough for an 80-column terminal, continued with `\`.
#[test]
fn help_examples_survive_any_terminal_width() {
    for cmd in commands::all() {
        let name = cmd.get_name().to_string();
        let Some(examples) = cmd.get_after_help().map(|s| s.to_string()) else {
            continue;
        };
        for line in examples.lines() {
            assert!(
                line.chars().count() <= 80,
                "{name}: a line of {} columns: {line}",
                line.chars().count()
            );
        }
        for width in ["30", "80", "250"] {
            let o = outcome(command(&name).arg("--help").env("COLUMNS", width));
            assert!(o.success(), "{name}");
            let help = o.stdout;
            assert!(
                help.ends_with(&format!("{examples}\n")),
                "{name} at {width} columns: the examples are not as written:\n{help}"
            );
        }
    }
}
