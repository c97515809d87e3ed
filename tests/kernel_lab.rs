//! Opt-in: our tools inside a QEMU VM against a live era target, checked against the
//! manifest the lab writes. Needs QEMU and the shared kernel-lab (see
//! tests/kernel-lab/run.sh); run with
//! `cargo test --release --test kernel_lab -- --ignored --nocapture`.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::lab::{carried_in, run_lab_in, target, Run};
use common::log::mirror_args;
use common::{command, outcome, s};
use serde_json::Value;

fn out_dir() -> PathBuf {
    target().join("out")
}

fn run_lab(scenario: &str) -> Value {
    run_lab_in(scenario, "out", &[])
}

fn carried(m: &Value, name: &str) -> Run {
    carried_in(m, "out", name)
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
        assert_eq!(r.code, 0, "since {n}: {}", r.stderr);
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
    assert_eq!(check.code, 0, "{}", check.stderr);
    for busy in ["check-live-busy", "inval-live-busy"] {
        let r = carried(&m, busy);
        assert_eq!(r.code, 1, "{busy}");
        assert!(
            r.stderr.contains("error: in use: held open exclusively"),
            "{busy}: {}",
            r.stderr
        );
    }
    let dropped = carried(&m, "inval-snap-dropped");
    assert_eq!(dropped.code, 1);
    assert!(dropped.stderr.contains("no current metadata snap"));
    let after = carried(&m, "check-after-remove");
    assert_eq!(after.code, 0, "{}", after.stderr);
    let live = carried(&m, "inval-after-remove-since-4");
    assert_eq!(live.code, 0, "{}", live.stderr);
    assert_eq!(
        xml_blocks(&live.stdout),
        ranges(&m["ground_truth"]["written_since"]["4"]),
        "live since 4 after remove"
    );
    // The snapshot cannot change while it is held, so the dump made in the VM while writes
    // went on equals an offline dump of the image captured later with the snapshot still held.
    let dump = carried(&m, "dump-snap");
    assert_eq!(
        dump.code, 0,
        "era_dump --metadata-snap in the VM: {}",
        dump.stderr
    );
    let captured = out_dir().join("era-live-tools.live-snap-held.img.gz");
    let img = {
        let mut v = Vec::new();
        let f = std::fs::File::open(&captured).unwrap();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(f), &mut v).unwrap();
        v
    };
    let file = common::temp_image(&img);
    let offline = common::run("era_dump", &["--metadata-snap", common::path_str(&file)]);
    assert_eq!(offline.code, 0, "{}", offline.stderr);
    assert_eq!(
        dump.stdout, offline.stdout,
        "live snapshot dump equals the offline one"
    );
    println!(
        "era_dump --metadata-snap in the VM: {} bytes, equal to the offline dump",
        dump.stdout.len()
    );
}

/// The log-crash log and legs, unpacked into `dir`, with leg 1 changed in region `region`
/// (64 KiB regions).
fn crash_mirror(dir: &Path, region: u64) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, bytes: Vec<u8>| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let log = write("log.img", common::fixture("log-crash.log.img.gz"));
    let leg0 = write("leg0.img", common::fixture("log-crash.leg0.img.gz"));
    let mut l1 = common::fixture("log-crash.leg1.img.gz");
    let at = (region * 65536 + 1000) as usize;
    l1[at..at + 16].copy_from_slice(b"DIFFERS FROM L0!");
    let leg1 = write("leg1.img", l1);
    (log, leg0, leg1)
}

/// Activates the mirror of `log` and legs in the VM, the results going to `out`; returns
/// the manifest, after checking that the legs compared equal once the kernel had synced.
fn activate_mirror(out: &str, (log, leg0, leg1): &(PathBuf, PathBuf, PathBuf)) -> Value {
    let m = run_lab_in(
        "log-host-image",
        out,
        &[
            ("KLAB_DISK_log", log),
            ("KLAB_DISK_leg0", leg0),
            ("KLAB_DISK_leg1", leg1),
        ],
    );
    let rc =
        std::fs::read_to_string(target().join(out).join("log-host-image.run.legs-cmp.rc")).unwrap();
    assert_eq!(rc.trim(), "0", "legs differ after the kernel's resync");
    m
}

fn in_sync_at_create(m: &Value) -> (u64, u64) {
    let line = common::create_status(m)["line"].as_str().unwrap();
    let field = line
        .split_whitespace()
        .find(|f| f.contains('/'))
        .expect("in-sync field");
    let (a, b) = field.split_once('/').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
#[ignore = "boots a VM: needs QEMU and the shared kernel-lab"]
fn mirror_after_offline_resync_is_in_sync_at_once() {
    let dir = target().join("inputs-resync");
    // Region 50 is dirty in the crash log.
    let disks = crash_mirror(&dir, 50);
    let (log, leg0, leg1) = &disks;
    let out = outcome(command("log_repair").args(mirror_args(
        &["--resync"],
        &[s(leg0), s(leg1)],
        s(log),
    )));
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(std::fs::read(leg0).unwrap(), std::fs::read(leg1).unwrap());
    let m = activate_mirror("out-resync", &disks);
    let (in_sync, total) = in_sync_at_create(&m);
    println!("after our offline resync the kernel reports {in_sync}/{total} in sync at activation");
    assert_eq!(in_sync, total);
}

#[test]
#[ignore = "boots a VM: needs QEMU and the shared kernel-lab"]
fn mirror_after_force_resync_copies_every_region() {
    let dir = target().join("inputs-force");
    // Region 10 is clean in the crash log: only a full resync makes the legs equal again.
    let disks = crash_mirror(&dir, 10);
    let out = outcome(command("log_repair").arg("--force-resync").arg(&disks.0));
    assert!(out.success(), "{}", out.stderr);
    let m = activate_mirror("out-force", &disks);
    let (in_sync, total) = in_sync_at_create(&m);
    println!("after --force-resync the kernel reports {in_sync}/{total} in sync at activation");
    assert!(in_sync < total);
}
