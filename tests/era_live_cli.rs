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
