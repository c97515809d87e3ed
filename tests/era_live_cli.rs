//! The --live options of era_invalidate, era_dump and era_check without a kernel target:
//! usage errors, and a target that cannot be reached is one line and exit 1.

mod common;

use common::run;

#[test]
fn live_options_go_together() {
    for (bin, extra) in [
        ("era_invalidate", vec!["--written-since", "1"]),
        ("era_dump", vec![]),
        ("era_check", vec![]),
    ] {
        let with = |args: &[&str]| {
            let mut a: Vec<&str> = args.to_vec();
            a.extend(&extra);
            run(bin, &a)
        };
        // --checkpoint and --use-held-snapshot need --live, and --live takes no INPUT.
        assert_eq!(with(&["--checkpoint", "meta.img"]).code, 2, "{bin}");
        assert_eq!(with(&["--use-held-snapshot", "meta.img"]).code, 2, "{bin}");
        assert_eq!(with(&["--live", "era0", "meta.img"]).code, 2, "{bin}");
        assert_eq!(
            with(&["--live", "era0", "--metadata-snap"]).code,
            2,
            "{bin}"
        );
        assert_eq!(with(&[]).code, 2, "{bin}: INPUT or --live");
    }
}

#[test]
fn an_unreachable_target_is_one_line_and_exit_1() {
    for bin in ["era_invalidate", "era_dump", "era_check"] {
        let mut args = vec!["--live", "era-log-tools-no-such-target"];
        if bin == "era_invalidate" {
            args.extend(["--written-since", "1"]);
        }
        let out = run(bin, &args);
        assert_eq!(out.code, 1, "{bin}: {}", out.stderr);
        if bin == "era_invalidate" {
            // Its output with --live is JSON: a failed run prints its error there too.
            let v: serde_json::Value = serde_json::from_str(&out.stdout).expect(&out.stdout);
            assert!(v["error"].is_string(), "{}", out.stdout);
        } else {
            assert!(out.stdout.is_empty(), "{bin}");
        }
        assert_eq!(out.stderr.lines().count(), 1, "{bin}: {}", out.stderr);
        // Without device-mapper (or without root) the control node is named; with it, the
        // target is missing.
        let prefix = format!("{bin}: era-log-tools-no-such-target: ");
        assert!(out.stderr.starts_with(&prefix), "{}", out.stderr);
        assert!(
            out.stderr.contains("/dev/mapper/control")
                || out.stderr.contains("no such device-mapper device"),
            "{}",
            out.stderr
        );
    }
    let out = run(
        "era_invalidate",
        &["--live", "/dev/null", "--written-since", "1"],
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "era_invalidate: /dev/null: error: not a block device"
    );
}

#[test]
fn cache_options_go_together() {
    let with = |args: &[&str]| {
        let mut a = vec!["--written-since", "1"];
        a.extend(args);
        run("era_invalidate", &a)
    };
    // --cache needs --live; --dry-run needs --cache; the cache blocks are listed as json or
    // text, by number; --messages is for the offline listing.
    for args in [
        &["--cache", "c0", "meta.img"][..],
        &["--live", "era0", "--dry-run"],
        &["--live", "era0", "--cache", "c0", "--format", "xml"],
        &["--live", "era0", "--cache", "c0", "--units", "bytes"],
        &["--live", "era0", "--cache", "c0", "--messages"],
        &[
            "--live",
            "era0",
            "--cache",
            "c0",
            "--cache-metadata",
            "cm.img",
        ],
    ] {
        let out = with(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
    }
    let out = with(&["--live", "era0", "--cache", "c0", "--format", "xml"]);
    assert!(
        out.stderr
            .contains("--cache lists cache blocks as json or text"),
        "{}",
        out.stderr
    );
}

/// `era_invalidate` asked to invalidate in a cache, with neither target there.
const NO_TARGETS: [&str; 6] = [
    "--live",
    "era-log-tools-no-such-target",
    "--cache",
    "era-log-tools-no-such-cache",
    "--written-since",
    "1",
];

#[test]
fn an_unreachable_era_target_with_a_cache_is_one_line_and_exit_1() {
    let out = run("era_invalidate", &NO_TARGETS);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("era_invalidate: era-log-tools-no-such-target: "),
        "{}",
        out.stderr
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect(&out.stdout);
    assert!(v["error"].is_string(), "{}", out.stdout);
}

/// The invalidation of a live cache cannot be undone: a -o that cannot be written is
/// refused before any device is asked anything.
#[test]
fn a_wrong_output_is_refused_before_the_cache_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no-such-dir/answer.json");
    let o = out.to_str().unwrap();
    let r = run("era_invalidate", &[&NO_TARGETS[..], &["-o", o]].concat());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with(&format!("era_invalidate: {o}: error: ")),
        "{}",
        r.stderr
    );
}
