//! Opt-in: our tools inside a QEMU VM against a live era target, checked against the
//! manifest the lab writes. Needs QEMU and the shared kernel-lab (see
//! tests/kernel-lab/run.sh); run with
//! `cargo test --release --test kernel_lab -- --ignored --nocapture`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kernel-lab/out")
}

fn run_lab(scenario: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel-lab/run.sh");
    let status = Command::new(script)
        .arg(scenario)
        .status()
        .expect("run.sh starts");
    assert!(status.success(), "the lab run failed");
    let text = std::fs::read_to_string(out_dir().join(format!("{scenario}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

struct Run {
    rc: i32,
    stdout: String,
    stderr: String,
}

fn carried(m: &Value, name: &str) -> Run {
    let r = m["carried_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("run {name} missing"));
    let read = |k: &str| std::fs::read_to_string(out_dir().join(r[k].as_str().unwrap())).unwrap();
    Run {
        rc: r["exit_code"].as_i64().unwrap() as i32,
        stdout: read("stdout"),
        stderr: read("stderr"),
    }
}

/// The blocks of an era_invalidate XML answer.
fn xml_blocks(xml: &str) -> BTreeSet<u64> {
    let num = |line: &str, attr: &str| -> u64 {
        let start = line.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
        line[start..].split('"').next().unwrap().parse().unwrap()
    };
    let mut out = BTreeSet::new();
    for line in xml.lines().map(str::trim) {
        if line.starts_with("<block ") {
            out.insert(num(line, "block"));
        } else if line.starts_with("<range ") {
            out.extend(num(line, "begin")..num(line, "end"));
        }
    }
    out
}

fn ranges(v: &Value) -> BTreeSet<u64> {
    v.as_array()
        .map(|a| {
            a.iter()
                .flat_map(|r| r[0].as_u64().unwrap()..r[1].as_u64().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "boots a VM: needs QEMU and the shared kernel-lab"]
fn live_target_with_a_held_snapshot() {
    let m = run_lab("era-live-tools");
    let event = &m["ground_truth"]["metadata_snapshot"]["events"][0];
    assert_eq!(event["what"], "taken");
    for n in 1..=5 {
        let r = carried(&m, &format!("inval-snap-since-{n}"));
        assert_eq!(r.rc, 0, "since {n}: {}", r.stderr);
        let want = ranges(&event["snapshot_written_since"][n.to_string()]);
        assert_eq!(xml_blocks(&r.stdout), want, "snapshot since {n}");
        println!(
            "snapshot --written-since {n}: {} blocks, as the kernel's truth",
            want.len()
        );
    }
    let text = carried(&m, "inval-snap-text");
    let want: Vec<String> = {
        let blocks: Vec<u64> = ranges(&event["snapshot_written_since"]["2"])
            .into_iter()
            .collect();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for b in blocks {
            match runs.last_mut() {
                Some(r) if r.1 == b => r.1 = b + 1,
                _ => runs.push((b, b + 1)),
            }
        }
        runs.iter()
            .map(|(b, e)| format!("{} {}", b * 64, e * 64))
            .collect()
    };
    assert_eq!(text.stdout.lines().collect::<Vec<_>>(), want);

    let check = carried(&m, "check-snap");
    assert_eq!(check.rc, 0, "{}", check.stderr);
    for busy in ["check-live-busy", "inval-live-busy"] {
        let r = carried(&m, busy);
        assert_eq!(r.rc, 1, "{busy}");
        assert!(r.stderr.contains("is in use"), "{busy}: {}", r.stderr);
    }
    let dropped = carried(&m, "inval-snap-dropped");
    assert_eq!(dropped.rc, 1);
    assert!(dropped.stderr.contains("no current metadata snap"));
    let after = carried(&m, "check-after-remove");
    assert_eq!(after.rc, 0, "{}", after.stderr);
    let live = carried(&m, "inval-after-remove-since-4");
    assert_eq!(live.rc, 0, "{}", live.stderr);
    assert_eq!(
        xml_blocks(&live.stdout),
        ranges(&m["ground_truth"]["written_since"]["4"]),
        "live since 4 after remove"
    );
    if let Some(dump) = m["carried_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "dump-snap")
    {
        assert_eq!(dump["exit_code"], 0, "era_dump --metadata-snap in the VM");
    }
}
