//! log_dump against every log image the kernel wrote, checked against the scenario
//! manifests (table geometry, status lines, writes, crash ground truth).

mod common;

use common::log::*;
use common::{create_status, entry, peak_kib};
use serde_json::Value;

/// The status lines of mirror `name` read at steps `from..`, as (step, in_sync, synced).
fn statuses(m: &Value, name: &str, from: u64) -> Vec<(u64, u64, bool)> {
    let mut out = Vec::new();
    for s in m["steps"].as_array().expect("steps") {
        let seq = s["seq"].as_u64().expect("seq");
        if seq < from {
            continue;
        }
        for st in s["status"].as_array().into_iter().flatten() {
            if st["dm_name"] == name {
                let p = &st["parsed"];
                out.push((
                    seq,
                    p["in_sync_regions"].as_u64().expect("in_sync"),
                    p["fully_synced"].as_bool().expect("synced"),
                ));
            }
        }
    }
    out
}

fn steps_of_kind(m: &Value, kind: &str) -> Vec<(u64, String)> {
    m["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == kind)
        .map(|s| {
            (
                s["seq"].as_u64().expect("seq"),
                s["command"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn log_dump_agrees_with_every_kernel_log_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    // Images per kind of check: crash, removed, written since sync, idle synced, resyncing.
    let mut seen = [0; 5];
    for scenario in log_scenarios() {
        let m = manifest(&scenario);
        let log_preloaded = m["disks"]
            .as_array()
            .expect("disks")
            .iter()
            .any(|d| d["name"] == "log" && d.get("initial_content").is_some());
        for img in m["images"].as_array().expect("images") {
            if img["disk"] != "log" {
                continue;
            }
            let file = img["file"].as_str().expect("file");
            let what = format!("{scenario}: {file}");
            let limit = img["after_step"].as_u64().unwrap_or(u64::MAX);
            // The mirror that last wrote this log: the latest disk-log table loaded before
            // the capture.
            let inst = m["mirror_instances"]
                .as_array()
                .expect("instances")
                .iter()
                .filter(|i| i["log_type"] == "disk")
                .rfind(|i| i["table_step"].as_u64().expect("table_step") <= limit)
                .expect("instance");
            let name = inst["dm_name"].as_str().expect("dm_name");
            let table_step = inst["table_step"].as_u64().expect("table_step");
            let nr = inst["nr_regions"].as_u64().expect("nr_regions");
            let rs = inst["region_size_sectors"].as_u64().expect("region size");
            let len = inst["length_sectors"].as_u64().expect("length");

            let path = unpack(file, dir.path());
            let rs_s = rs.to_string();
            let len_s = len.to_string();
            let j = dump_json(&path, &["--region-size", &rs_s, "--length", &len_s]);
            assert_eq!(j["nr_regions"].as_u64(), Some(nr), "{what}: nr_regions");
            assert_eq!(j["regions"].as_u64(), Some(nr), "{what}");
            assert_eq!(j["version"].as_u64(), Some(2), "{what}");
            let clean = j["clean"].as_u64().expect("clean");
            let dirty = j["dirty"].as_u64().expect("dirty");
            assert_eq!(clean + dirty, nr, "{what}");
            let dirty_rs = dirty_ranges(&j);
            assert_eq!(
                dirty_rs.iter().map(|r| r.end - r.start).sum::<u64>(),
                dirty,
                "{what}"
            );
            // The geometry matches, so no warning about nr_regions is expected.
            assert!(
                !j["findings"]
                    .as_array()
                    .expect("findings")
                    .iter()
                    .any(|f| f["severity"] == "warning"),
                "{what}: {}",
                j["findings"]
            );

            let removed = steps_of_kind(&m, "remove").iter().any(|(seq, cmd)| {
                *seq > table_step && *seq < limit && cmd.ends_with(&format!(" {name}"))
            });
            let st = statuses(&m, name, table_step);
            if inst.get("crash").is_some() && img["after_step"].is_null() {
                // Checked with the legs in crash_image_* below.
                assert!(
                    dirty > 0,
                    "{what}: a crash under write load leaves dirty regions"
                );
                let in_flight = ranges(&inst["crash"]["regions_in_flight"]);
                assert!(covered(&dirty_rs, &in_flight), "{what}: {dirty_rs:?}");
                seen[0] += 1;
            } else if removed {
                assert_eq!(
                    inst["last_status_parsed"]["fully_synced"], true,
                    "{what}: manifest"
                );
                assert_eq!(dirty, 0, "{what}: a synced mirror removed cleanly");
                seen[1] += 1;
            } else {
                let prev = st.iter().rfind(|s| s.0 < limit).expect("status");
                let next = st.iter().find(|s| s.0 >= limit);
                if prev.2 {
                    let synced_at = st.iter().find(|s| s.2).expect("synced").0;
                    let wrote = steps_of_kind(&m, "write")
                        .iter()
                        .any(|(seq, _)| *seq >= synced_at && *seq < limit);
                    if wrote {
                        let written = ranges(&inst["regions_written"]);
                        assert!(covered(&dirty_rs, &written), "{what}: {dirty_rs:?}");
                        seen[2] += 1;
                    } else {
                        assert_eq!(dirty, 0, "{what}: fully synced, no write since");
                        seen[3] += 1;
                    }
                } else {
                    // Resync in progress: the log's clean count lies between the in-sync
                    // counts of the status lines read before and after the capture.
                    let next = next.expect("a status after the capture");
                    assert!(
                        prev.1 <= clean && clean <= next.1,
                        "{what}: clean {clean} not within {}..={}",
                        prev.1,
                        next.1
                    );
                    seen[4] += 1;
                    if !log_preloaded {
                        // Everything to resync was dirty at resume and the kernel recovers
                        // in ascending order: the dirty regions are one tail.
                        assert_eq!(dirty_rs, vec![clean..nr], "{what}");
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} log images found");
    assert_eq!(seen, [1, 8, 3, 2, 6], "images per kind of check");
}

#[test]
fn resize_images_carry_the_region_count_of_each_table() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest("log-resize");
    let counts: Vec<u64> = m["mirror_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["nr_regions"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![512, 1024, 256]);
    let small = dump_json(&unpack("log-resize.small-removed.img.gz", dir.path()), &[]);
    let grown = dump_json(
        &unpack("log-resize.grown-live-start.img.gz", dir.path()),
        &[],
    );
    let shrunk = dump_json(&unpack("log-resize.log.img.gz", dir.path()), &[]);
    assert_eq!(small["nr_regions"], 512);
    assert_eq!(grown["nr_regions"], 1024);
    assert_eq!(shrunk["nr_regions"], 256);
    // The grow added regions 512..1023 dirty; the create status counted 523 in sync.
    let create = &m["steps"][6]["status"][0]["parsed"];
    assert_eq!(create["total_regions"], 1024);
    assert!(grown["clean"].as_u64().unwrap() >= create["in_sync_regions"].as_u64().unwrap());
    // The shrink left the old bits after the 256-region bitmap; they are reported, not
    // counted.
    assert_eq!(shrunk["dirty"], 0);
    assert!(shrunk["stale_bytes_after_bitmap"].as_u64().unwrap() > 0);
    // Read for the old 512-region table with the final 256-region header, the dump is
    // refused: its sector ranges would be those of another mirror.
    let o = run(
        "log_dump",
        &[
            "--region-size",
            "128",
            "--length",
            "65536",
            dir.path().join("log-resize.log.img").to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 1);
    let err = o.stderr.as_str();
    assert!(
        err.contains(
            "the log has 256 regions, but a length of 65536 sectors in regions of 128 sectors \
             makes 512; take both from the mirror's table"
        ) && !err.contains("likely"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn xml_and_text_outputs_describe_the_same_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let p = log.to_str().unwrap();
    let xml = ok("log_dump", &[p]);
    let j = dump_json(&log, &[]);
    let ranges = dirty_ranges(&j);
    assert!(xml.starts_with(&format!(
        "<dirty_log version=\"2\" nr_regions=\"512\" clean=\"{}\" dirty=\"{}\">",
        j["clean"], j["dirty"]
    )));
    for r in &ranges {
        assert!(xml.contains(&format!("<dirty begin=\"{}\" end=\"{}\"/>", r.start, r.end)));
    }
    let xml = ok(
        "log_dump",
        &["--region-size", "128", "--length", "65536", p],
    );
    let r = &ranges[0];
    assert!(xml.contains(&format!(
        "<dirty begin=\"{}\" end=\"{}\" begin_sector=\"{}\" end_sector=\"{}\"/>",
        r.start,
        r.end,
        r.start * 128,
        r.end * 128
    )));
    assert!(xml.contains("region_size=\"128\""));
    let text = ok("log_dump", &["--format", "text", p]);
    assert!(text.contains(&format!("dirty regions:      {}", j["dirty"])));
    assert!(text.contains(&format!("\n  {} {}\n", r.start, r.end)));
    // A region size the kernel would refuse is an error, not a silently dropped option.
    let o = run(
        "log_dump",
        &["--region-size", "100", "--length", "65536", p],
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.as_str().contains("region size 100"));
    let out = dir.path().join("out.xml");
    ok("log_dump", &["-o", out.to_str().unwrap(), p]);
    assert_eq!(std::fs::read_to_string(out).unwrap(), ok("log_dump", &[p]));
}

#[test]
fn lvm_initialised_logs_are_read_with_a_given_count() {
    let dir = tempfile::tempdir().unwrap();
    // As LVM2 creates a log "in sync": everything 0xFF, then the header with all-ones
    // nr_regions.
    let log = dir.path().join("lvm.img");
    let mut data = vec![0xFFu8; 4096];
    data[0..4].copy_from_slice(&[0x72, 0x52, 0x69, 0x4D]);
    data[4..8].copy_from_slice(&2u32.to_le_bytes());
    data[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&log, &data).unwrap();
    let o = run("log_dump", &[log.to_str().unwrap()]);
    assert!(o.success());
    assert!(o.stderr.as_str().contains("never activated"));
    let j = dump_json(&log, &["--nr-regions", "1000"]);
    assert_eq!(j["nr_regions_state"], "lvm-initialised");
    assert_eq!(
        (j["regions"].as_u64(), j["clean"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(j["header_padding"], "ones");
    // Bits 1000..1023 of the last word are set: stray, cleared by the kernel at resume.
    assert_eq!(j["stray_bits"], 24);
    let j = dump_json(&log, &["--region-size", "64", "--length", "6400"]);
    assert_eq!(j["regions"], 100);
    // A count that the geometry contradicts is refused like a header's: its sector ranges
    // would run past the mirror's end.
    let o = run(
        "log_dump",
        &[
            "--nr-regions",
            "1000",
            "--region-size",
            "64",
            "--length",
            "6400",
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 1);
    let err = o.stderr.as_str();
    assert!(
        err.contains("the log has 1000 regions, but a length of 6400 sectors in regions of 64 sectors makes 100"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn the_kernel_took_the_crash_log_the_way_log_dump_reads_it() {
    // log-host-image activated the log-crash images in a fresh VM without a sync argument.
    let dir = tempfile::tempdir().unwrap();
    let m = manifest("log-host-image");
    let log_disk = entry(&m["disks"], "name", "log");
    assert_eq!(
        log_disk["initial_content"]["from_host_file"],
        "log-crash.log.img.gz"
    );
    let crash = dump_json(&unpack("log-crash.log.img.gz", dir.path()), &[]);
    let activated = dump_json(&unpack("log-host-image.activated.img.gz", dir.path()), &[]);
    let in_sync = create_status(&m)["parsed"]["in_sync_regions"]
        .as_u64()
        .unwrap();
    // At resume the kernel's in-sync set is the clean bits; recovery can only add to it.
    assert!(crash["clean"].as_u64().unwrap() <= in_sync);
    assert!(in_sync < 512, "the kernel found dirty regions to resync");
    // Whatever the kernel still had to resync was dirty in the log we read.
    assert!(covered(&dirty_ranges(&activated), &dirty_ranges(&crash)));
    // And after the resync its legs compared equal.
    assert_eq!(m["carried_runs"][0]["exit_code"], 0);
}

#[test]
fn the_report_is_never_written_over_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let before = std::fs::read(&log).unwrap();
    let p = log.to_str().unwrap();
    let o = run("log_dump", &["-o", p, p]);
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1, "{err}");
    assert!(err.contains("is the input"), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), before);
}

#[test]
fn a_region_size_without_the_length_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let p = log.to_str().unwrap();
    // 512 regions fit 128 x 65536 as well as 256 x 131072: a region size alone would print
    // sector ranges nothing has checked.
    for args in [
        vec!["--region-size", "256", p],
        vec!["--region-size", "256", "--format", "text", p],
        vec!["--length", "65536", p],
    ] {
        let o = run("log_dump", &args);
        let err = o.stderr.as_str();
        assert_eq!(o.code, 2, "{args:?}: {err}");
        assert!(
            err.contains("--length") && err.contains("--region-size"),
            "{err}"
        );
        assert!(o.stdout.is_empty(), "{args:?} printed a report");
    }
    let j = dump_json(&log, &["--region-size", "128", "--length", "65536"]);
    assert_eq!(
        (j["region_size"].as_u64(), j["length"].as_u64()),
        (Some(128), Some(65536))
    );
}

#[test]
fn dump_memory_does_not_grow_with_the_bitmap() {
    // The bits are read a piece at a time and the ranges written out as they are found:
    // a 32 MiB bitmap takes no more memory than a 1 KiB one, within the margin.
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.img");
    let large = dir.path().join("large.img");
    spread_log(&small, 8192);
    let dirty = spread_log(&large, LARGE_LOG_REGIONS);
    let peak = |log: &std::path::Path, nr: u64, format: &str| {
        let geometry = two_sector_geometry(nr);
        let mut args = vec!["--format", format, s(log)];
        args.extend(geometry.iter().map(String::as_str));
        peak_kib("log_dump", &args)
    };
    for format in ["xml", "json", "text"] {
        let small_kib = peak(&small, 8192, format);
        let large_kib = peak(&large, LARGE_LOG_REGIONS, format);
        assert!(
            large_kib <= small_kib + MEMORY_MARGIN_KIB,
            "{format}: {small_kib} KiB for 8192 regions, {large_kib} KiB for {LARGE_LOG_REGIONS}"
        );
    }
    assert_eq!(dirty_ranges(&dump_json(&large, &[])), dirty);
}
