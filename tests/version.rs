//! `-V`/`--version` prints the bare version number, as thin-provisioning-tools does:
//! clients parse it as X.Y.Z.

mod common;

use common::{every_tools_help, run};
use era_log_tools::commands;

#[test]
fn every_tool_prints_the_bare_version() {
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        version.split('.').count(),
        3,
        "version {version} is not X.Y.Z"
    );
    for cmd in commands::all() {
        let name = cmd.get_name();
        for flag in ["-V", "--version"] {
            let out = run(name, &[flag]);
            assert_eq!(out.code, 0, "{name} {flag}");
            assert_eq!(out.stdout, format!("{version}\n"), "{name} {flag}");
            assert!(out.stderr.is_empty(), "{name} {flag}");
        }
    }
}

#[test]
fn help_lists_the_version_flag() {
    for (name, help) in every_tools_help() {
        assert!(help.contains("-V, --version"), "{name}: {help}");
    }
}
