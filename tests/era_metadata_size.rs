//! era_metadata_size against what the kernel reported: the committed-state count of the
//! formula equals the status line's "used" of every kernel fixture at creation, and after a
//! pile-up of undigested writesets counted in the image captured right after the status.

mod common;

use common::{archived, entry, fixture, manifest, run};
use era_log_tools::era::metadata_size::{committed_blocks, size};

/// Origin blocks of a manifest's first table: `0 LEN era META ORIGIN BS`.
fn nr_blocks(m: &serde_json::Value) -> u64 {
    let table = m["tables"][0]["table"].as_str().unwrap();
    let f: Vec<&str> = table.split_whitespace().collect();
    let len: u64 = f[1].parse().unwrap();
    let bs: u64 = f[5].parse().unwrap();
    len.div_ceil(bs)
}

fn used_total(status: &serde_json::Value) -> (u64, u64) {
    let p = &status["parsed"];
    (
        p["used_metadata_blocks"].as_u64().unwrap(),
        p["total_metadata_blocks"].as_u64().unwrap(),
    )
}

#[test]
fn a_fresh_target_uses_what_the_formula_counts() {
    // Each scenario's first table is on metadata the kernel formatted itself (era-host-image
    // and era-resize's later tables excepted).
    for scenario in [
        "era-basic",
        "era-crash",
        "era-large",
        "era-live-carried",
        "era-many-eras",
        "era-odd",
        "era-resize",
        "era-snap-held",
        "era-writeset-pileup",
    ] {
        let m = manifest(scenario);
        let (used, total) = used_total(common::create_status(&m));
        let n = nr_blocks(&m);
        assert_eq!(
            committed_blocks(n, 0, total),
            used,
            "{scenario}: {n} blocks"
        );
    }
}

#[test]
fn piled_up_writesets_use_what_the_formula_counts() {
    // The status line read right before each capture (no commit in between).
    for (scenario, image, step) in [
        ("era-writeset-pileup", "live-after-last-checkpoint", 399),
        ("era-large", "live-end", 13),
    ] {
        let m = manifest(scenario);
        let st = entry(&m["steps"], "seq", step);
        let (used, total) = used_total(&st["status"][0]);
        let img = fixture(&format!("{scenario}.{image}.img.gz"));
        let w = archived(&img);
        let n = nr_blocks(&m);
        println!("{scenario}: {n} blocks, {w} archived writesets, {used}/{total} in use");
        assert_eq!(committed_blocks(n, w, total), used, "{scenario}");
        // The size asked for that many writesets holds them and a transaction's copies.
        let s = size(n, w).unwrap();
        assert!(s.total >= used + s.era_array, "{scenario}");
    }
    // era-writeset-pileup: 275 writesets waited.
    assert_eq!(
        archived(&fixture(
            "era-writeset-pileup.live-after-last-checkpoint.img.gz"
        )),
        275
    );
}

#[test]
fn the_tool_prints_the_size_in_the_units_asked() {
    let out = run(
        "era_metadata_size",
        &[
            "--nr-blocks",
            "2097152",
            "--writesets",
            "275",
            "--units",
            "blocks",
            "-n",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let blocks: u64 = out.stdout.trim().parse().unwrap();
    assert_eq!(blocks, size(2_097_152, 275).unwrap().total);
    // The same origin given as a size and a block size.
    let bytes = run(
        "era_metadata_size",
        &[
            "--origin-size",
            "8G",
            "--block-size",
            "8",
            "--writesets",
            "275",
        ],
    );
    assert_eq!(bytes.stdout.trim(), format!("{} bytes", blocks * 4096));
    let json = run(
        "era_metadata_size",
        &[
            "--nr-blocks",
            "2097152",
            "--writesets",
            "275",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["metadata_blocks"], blocks);
    assert_eq!(
        v["committed_blocks"].as_u64().unwrap() + v["headroom_blocks"].as_u64().unwrap(),
        blocks
    );
    for (args, msg) in [
        (vec!["--nr-blocks", "0", "--writesets", "1"], "from 1 to"),
        (
            vec!["--nr-blocks", "2147483647", "--writesets", "0"],
            "can address",
        ),
        (
            vec![
                "--origin-size",
                "1G",
                "--block-size",
                "12",
                "--writesets",
                "1",
            ],
            "multiple of 8",
        ),
    ] {
        let out = run("era_metadata_size", &args);
        assert_eq!(out.code, 1, "{args:?}");
        assert!(
            out.stderr.starts_with("era_metadata_size: "),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(msg), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_value_no_tool_can_read_is_a_usage_error_like_any_other() {
    let lots = [
        "--origin-size",
        "lots",
        "--block-size",
        "8",
        "--writesets",
        "1",
    ];
    for args in [&lots[..], &["--nr-blocks", "abc", "--writesets", "1"]] {
        let out = run("era_metadata_size", args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("era_metadata_size: error: "),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = run("era_metadata_size", &lots);
    assert!(out.stderr.contains("not a size"), "{}", out.stderr);
}

/// With --format json, a failure is JSON too: an impossible geometry (exit 1) and a value
/// that cannot be read (exit 2) each print one object with the error's words.
#[test]
fn json_is_printed_when_a_run_fails() {
    for (args, code, words) in [
        (
            ["--nr-blocks", "0", "--writesets", "1"],
            1,
            "an era target has from 1 to",
        ),
        (
            ["--nr-blocks", "x", "--writesets", "1"],
            2,
            "invalid value 'x'",
        ),
    ] {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        let out = run("era_metadata_size", &args);
        assert_eq!(out.code, code, "{args:?}: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect(&out.stdout);
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains(words), "{}", out.stdout);
        let first = out.stderr.lines().next().unwrap_or_default();
        assert_eq!(first, format!("era_metadata_size: error: {error}"));
    }
}
