//! The README's recipe "Bringing a mirror back after a crash" is the script
//! examples/recipes/mirror-after-crash.sh: the README shows it verbatim, and it runs here on
//! files standing in for the log and the two legs, failures included.

mod common;

use std::path::Path;

use common::log::*;
use common::{contents, root, script};

const SCRIPT: &str = "examples/recipes/mirror-after-crash.sh";
const REGION_BYTES: usize = 128 * 512;

/// Runs the recipe in `dir` with the suite's binaries first in PATH.
fn recipe(dir: &Path, args: &[&str]) -> Outcome {
    outcome(
        script(&root().join(SCRIPT), None)
            .args(args)
            .env("BACKUP", dir.join("undo.bak"))
            .current_dir(dir),
    )
}

/// The kernel's crash log and legs, leg 1 stale in two dirty regions.
fn mirror() -> Crash {
    let m = crash();
    let mut stale = std::fs::read(&m.leg1).unwrap();
    for r in [48, 300] {
        stale[r * REGION_BYTES + 77] ^= 0x5A;
    }
    std::fs::write(&m.leg1, stale).unwrap();
    m
}

#[test]
fn the_readme_shows_the_script_verbatim() {
    let script = std::fs::read_to_string(root().join(SCRIPT)).unwrap();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split_once("### Bringing a mirror back after a crash")
        .expect("the recipe's section")
        .1;
    let indented: Vec<String> = script
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect();
    assert!(
        section.contains(&format!("\n\n{}\n\n", indented.join("\n"))),
        "README's recipe differs from {SCRIPT}"
    );
}

#[test]
fn the_recipe_resynchronises_the_legs_and_can_be_undone() {
    let m = mirror();
    let before = contents(&[&m.log, &m.leg0, &m.leg1]);
    let o = recipe(
        m.dir.path(),
        &["128", "65536", s(&m.log), s(&m.leg0), s(&m.leg1)],
    );
    let out = o.stdout.as_str();
    assert!(o.success(), "{out}{}", o.stderr.as_str());
    assert!(out.contains("dirty regions:      208"), "{out}");
    assert!(
        out.contains("2 regions differ between legs and stay dirty: 48..49, 300..301"),
        "{out}"
    );
    assert!(out.contains("copied 208 regions"), "{out}");
    assert_eq!(std::fs::read(&m.leg1).unwrap(), before[1]);
    assert_eq!(dump_json(&m.log, &[])["dirty"], 0);
    // The backup the recipe names puts everything back.
    let bak = m.dir.path().join("undo.bak");
    ok("log_repair", &["--undo", s(&bak), s(&m.log)]);
    for (p, b) in [&m.log, &m.leg0, &m.leg1].iter().zip(&before) {
        assert!(
            std::fs::read(p).unwrap() == *b,
            "{} not put back",
            p.display()
        );
    }
}

#[test]
fn the_recipe_stops_at_a_wrong_geometry_and_changes_nothing() {
    let m = mirror();
    let files = [&m.log, &m.leg0, &m.leg1];
    let before = contents(&files);
    for (rs, len) in [("256", "65536"), ("128", "131072"), ("256", "131072")] {
        let o = recipe(m.dir.path(), &[rs, len, s(&m.log), s(&m.leg0), s(&m.leg1)]);
        let err = o.stderr.as_str();
        assert_eq!(o.code, 1, "{rs} x {len}: {err}");
        assert!(err.contains("error:"), "{err}");
        for (p, b) in files.iter().zip(&before) {
            assert!(std::fs::read(p).unwrap() == *b, "{} changed", p.display());
        }
        assert!(!m.dir.path().join("undo.bak").exists());
    }
    // Too few arguments: the usage, and nothing run.
    let o = recipe(m.dir.path(), &["128", "65536", s(&m.log), s(&m.leg0)]);
    assert_eq!(o.code, 2);
}

/// A second run of the recipe with the backup of the first still there stops before it
/// looks at anything, and says to keep that backup: it undoes the first run.
#[test]
fn the_recipe_keeps_an_earlier_backup() {
    let m = mirror();
    let bak = m.dir.path().join("undo.bak");
    std::fs::write(&bak, b"the undo of an earlier run").unwrap();
    let log_before = std::fs::read(&m.log).unwrap();
    let o = recipe(
        m.dir.path(),
        &["128", "65536", s(&m.log), s(&m.leg0), s(&m.leg1)],
    );
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1, "{err}");
    assert!(
        err.contains("keep it, and name another with BACKUP=FILE"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    assert_eq!(std::fs::read(&bak).unwrap(), b"the undo of an earlier run");
    assert_eq!(std::fs::read(&m.log).unwrap(), log_before);
}
