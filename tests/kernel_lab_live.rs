//! Opt-in: the live session and era_metadata_size against a real kernel, in a QEMU VM
//! (tests/kernel-lab/era-live-backup.sh and era-metadata-size.sh). Run with
//! `cargo test --release --test kernel_lab_live -- --ignored --nocapture --test-threads 1`.

mod common;

use std::collections::BTreeSet;

use common::archived;
use common::lab::{carried_in, notes, run_lab_in, status_at, steps, target};
use era_log_tools::era::metadata_size::{committed_blocks, size};
use serde_json::Value;

const OUT: &str = "out-live";
/// era-live-backup's target: 1000 blocks of 64 sectors and one of 24.
const ORIGIN_SECTORS: u64 = 64024;

fn held(m: &Value, step: u64, dm: &str) -> Option<u64> {
    status_at(m, step, dm).and_then(|s| s["parsed"]["held_metadata_root"].as_u64())
}

/// The byte ranges of a live JSON answer, as origin blocks of 64 sectors.
fn blocks(v: &Value) -> BTreeSet<u64> {
    v["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let b = r["begin"].as_u64().unwrap() / (64 * 512);
            let e = r["end"].as_u64().unwrap().div_ceil(64 * 512);
            b..e
        })
        .collect()
}

#[test]
#[ignore = "boots a VM: needs QEMU and the shared kernel-lab"]
fn backup_loop_on_a_live_target() {
    let m = run_lab_in("era-live-backup", OUT, &[]);
    assert_eq!(m["result"], "ok");
    let run = |name: &str| carried_in(&m, OUT, name);

    // The loop: a full run, then six incrementals, each passing the previous next era.
    let mut next = 0u64;
    let mut prev_step = 0u64;
    for name in ["full", "inc-1", "inc-2", "inc-3", "inc-4", "inc-5", "inc-6"] {
        let r = run(name);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert!(r.stderr.is_empty(), "{name}: {}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["written_since"], next, "{name}");
        assert_eq!(v["snapshot_read"], true);
        assert_eq!(v["snapshot_taken"], true);
        assert_eq!(v["checkpoint"], true);
        assert_eq!(v["block_size_sectors"], 64);
        assert_eq!(v["block_size_bytes"], 32768);
        assert_eq!(v["origin_sectors"], ORIGIN_SECTORS);
        assert_eq!(v["origin_bytes"], ORIGIN_SECTORS * 512);
        // take_metadata_snap starts the era after the one on the status line.
        assert_eq!(v["next_written_since"], v["era"].as_u64().unwrap() + 1);
        let listed = blocks(&v);
        // Every write acknowledged since the previous run is listed (our own background
        // writer's writes are not in the manifest; the byte comparison covers them).
        let written: BTreeSet<u64> = m["writes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| {
                let s = w["step"].as_u64().unwrap();
                s > prev_step && s < r.step
            })
            .flat_map(|w| w["blocks"][0].as_u64().unwrap()..w["blocks"][1].as_u64().unwrap())
            .collect();
        assert!(
            written.is_subset(&listed),
            "{name}: a written block is missing"
        );
        // No snapshot is left held after a run.
        assert_eq!(held(&m, r.step, "e"), None, "{name}");
        if name == "inc-6" || name == "full" {
            let last = v["ranges"].as_array().unwrap().last().unwrap();
            assert_eq!(
                last["end"],
                ORIGIN_SECTORS * 512,
                "{name}: trimmed to the origin"
            );
        }
        println!(
            "{name}: --written-since {next}: {} ranges, {} blocks (of which {} written by the \
             scenario since the last run), next {}",
            v["ranges"].as_array().unwrap().len(),
            listed.len(),
            written.len(),
            v["next_written_since"]
        );
        next = v["next_written_since"].as_u64().unwrap();
        prev_step = r.step;
    }
    assert!(
        steps(&m).iter().any(|s| s["kind"] == "reload"),
        "a table reload happened"
    );
    let cmp = run("compare");
    assert_eq!(cmp.code, 0, "backup differs: {}{}", cmp.stdout, cmp.stderr);
    println!(
        "backup byte-identical to the origin ({} bytes)",
        ORIGIN_SECTORS * 512
    );

    // Refusals: one line, exit 1.
    for (name, want) in [
        (
            "missing",
            "era_invalidate: nosuch: error: no such device-mapper device",
        ),
        (
            "not-era",
            "era_invalidate: lin: error: the target is 'linear', not 'era'",
        ),
        ("not-root", "Permission denied"),
        (
            "held",
            "era_invalidate: e: error: a metadata snapshot is already held (root ",
        ),
    ] {
        let r = run(name);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{name}: {}", r.stderr);
        // With --live the output is JSON: a refusal is an object with the error's words.
        let v: Value = serde_json::from_str(&r.stdout).expect(&r.stdout);
        let what = v["error"].as_str().unwrap_or_default();
        assert!(
            !what.is_empty() && r.stderr.trim_end().ends_with(&format!("error: {what}")),
            "{name}: {}",
            r.stdout
        );
        println!("{name}: {}", r.stderr.trim());
    }
    // A suspended target: refused before any status read (which would hang).
    let note = notes(&m)
        .into_iter()
        .find(|n| n.starts_with("suspended: "))
        .expect("suspended note");
    println!("{note}");
    assert!(
        note.starts_with("suspended: exit 1; ")
            && note.contains("stderr: era_invalidate: e: error: the device is suspended"),
        "{note}"
    );
    // Someone else's snapshot: refused, then read with --use-held-snapshot, left held.
    let held_run = run("held");
    let theirs = held(&m, held_run.step, "e").expect("still held");
    assert!(held_run.stderr.contains(&format!("(root {theirs})")));
    let used = run("use-held");
    assert_eq!(used.code, 0, "{}", used.stderr);
    let v: Value = serde_json::from_str(&used.stdout).unwrap();
    assert_eq!(v["snapshot_taken"], false);
    assert_eq!(v["snapshot_root"], theirs);
    assert_eq!(held(&m, used.step, "e"), Some(theirs), "left held");

    for name in ["check-live", "dump-live", "by-path"] {
        let r = run(name);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert_eq!(held(&m, r.step, "e"), None, "{name}");
    }
    assert!(run("dump-live")
        .stdout
        .trim_end()
        .ends_with("</superblock>"));

    // Killed in the middle of a read: the snapshot is dropped, nothing is left held.
    // Like every tool stopped by a signal, the exit status is 128 + the signal.
    for (sig, status) in [("TERM", 143), ("INT", 130)] {
        let note = notes(&m)
            .into_iter()
            .find(|n| n.starts_with(&format!("kill -{sig}: ")))
            .expect("kill note");
        println!("{note}");
        let exit = format!("exit {status}; ");
        assert!(note.contains(&exit), "{note}");
        assert!(note.contains("held root afterwards: -;"), "{note}");
        assert!(
            note.contains(&format!("interrupted by SIG{sig}; metadata snapshot ")),
            "{note}"
        );
        assert!(note.contains(" dropped"), "{note}");
        let bytes: u64 = note
            .split(&exit)
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .expect("bytes written");
        assert!(bytes > 0, "killed before the read began: {note}");
        let after = run(&format!("after-kill-{sig}"));
        assert!(after.stdout.trim_end().ends_with(" -"), "{}", after.stdout);
    }
}

fn used_total(m: &Value, seq: u64, dm: &str) -> (u64, u64) {
    let p = &status_at(m, seq, dm).expect("status")["parsed"];
    (
        p["used_metadata_blocks"].as_u64().unwrap(),
        p["total_metadata_blocks"].as_u64().unwrap(),
    )
}

#[test]
#[ignore = "boots a VM: needs QEMU and the shared kernel-lab"]
fn metadata_sized_by_the_tool_holds_what_it_was_sized_for() {
    let m = run_lab_in("era-metadata-size", OUT, &[]);
    assert_eq!(m["result"], "ok", "a write, message or status failed");
    let run = |name: &str| carried_in(&m, OUT, name);

    // Part A: 300 undigested writesets on 2097152 blocks.
    let sectors: u64 = run("size-ma").stdout.trim().parse().unwrap();
    let sizing = size(2_097_152, 300).unwrap();
    assert_eq!(sectors, sizing.total * 8);
    let capture = steps(&m).iter().find(|s| s["kind"] == "capture").unwrap()["seq"]
        .as_u64()
        .unwrap();
    let (used, total) = used_total(&m, capture - 1, "a");
    assert_eq!(
        total, sizing.total,
        "the kernel saw a device of the size given"
    );
    let img = {
        let f = std::fs::File::open(target().join(OUT).join("era-metadata-size.pileup.img.gz"))
            .unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(f), &mut v).unwrap();
        v
    };
    let w = archived(&img);
    println!(
        "part A: {w} archived writesets undigested; status {used}/{total}; era_metadata_size \
         for 300: {} blocks ({} committed + {} headroom); {:.1}% above the use shown",
        sizing.total,
        sizing.committed,
        sizing.headroom,
        (sizing.total as f64 / used as f64 - 1.0) * 100.0
    );
    assert!(w >= 300, "only {w} writesets piled up");
    let counted = committed_blocks(2_097_152, w, total);
    assert!(
        used.abs_diff(counted) <= sizing.writeset + 4,
        "status {used}, formula {counted}"
    );
    assert!(sizing.total >= used);
    assert!(
        sizing.total * 10 <= used * 11,
        "more than 10% above the use shown"
    );

    // Part B: one writeset digested in a single transaction copies the era array.
    let sectors: u64 = run("size-mb").stdout.trim().parse().unwrap();
    let small = size(65_536, 1).unwrap();
    assert_eq!(sectors, small.total * 8);
    let quiet = steps(&m)
        .iter()
        .find(|s| s["command"] == "sleep 5")
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    // The status after the quiet period, and the one right after it (the first committed).
    let (peak, total) = used_total(&m, quiet, "b");
    let (committed, _) = used_total(&m, quiet + 1, "b");
    println!(
        "part B: status after the quiet digestion {peak}/{total}, after the next commit \
         {committed}; era_metadata_size for 1 writeset: {} blocks, {:.1}% above the peak",
        small.total,
        (small.total as f64 / peak as f64 - 1.0) * 100.0
    );
    assert_eq!(total, small.total);
    assert!(
        peak >= committed + small.era_array,
        "the transaction did not copy the era array ({peak} vs {committed})"
    );
    assert!(small.total >= peak, "the peak exceeded the size");
    assert!(
        small.total * 10 <= peak * 11,
        "more than 10% above the peak"
    );
}
