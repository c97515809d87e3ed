//! `-V`/`--version` prints the bare version number, as thin-provisioning-tools does:
//! clients parse it as X.Y.Z.

use std::path::Path;
use std::process::Command;

use era_log_tools::commands;

/// The path of a binary of this crate: they are all built beside era_check.
fn exe(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_BIN_EXE_era_check")).with_file_name(name)
}

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
            let out = Command::new(exe(name))
                .arg(flag)
                .output()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out.status.code(), Some(0), "{name} {flag}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{version}\n"),
                "{name} {flag}"
            );
            assert!(out.stderr.is_empty(), "{name} {flag}");
        }
    }
}

#[test]
fn help_lists_the_version_flag() {
    for cmd in commands::all() {
        let name = cmd.get_name();
        let out = Command::new(exe(name)).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("-V, --version"), "{name}: {help}");
    }
}
