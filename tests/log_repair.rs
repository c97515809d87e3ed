//! log_repair on the kernel's crash image and its two legs, on the other kernel images,
//! and on hostile logs.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::path::{Path, PathBuf};

use common::log::*;
use common::{contents, peak_kib, try_outcome};

const REGION_BYTES: usize = 128 * 512;

/// Changes the byte at `offset`.
fn flip(data: &mut [u8], offset: usize) {
    data[offset] ^= 0x5A;
}

#[test]
fn crash_geometry_matches_the_manifest() {
    let m = manifest("log-crash");
    let inst = &m["mirror_instances"][0];
    assert_eq!(inst["region_size_sectors"], 128);
    assert_eq!(inst["length_sectors"], 65536);
    assert_eq!(inst["nr_regions"], 512);
    let legs: Vec<_> = inst["legs"].as_array().unwrap().iter().collect();
    assert_eq!(
        (legs[0]["offset"].as_u64(), legs[1]["offset"].as_u64()),
        (Some(0), Some(0))
    );
    // Both legs were captured identical (same digest), as the kernel's invariant wants for
    // clean regions.
    let img = m["images"].as_array().unwrap();
    assert_eq!(img[1]["sha256_uncompressed"], img[2]["sha256_uncompressed"]);
}

#[test]
fn resync_copies_exactly_the_dirty_regions_from_leg_0() {
    let c = crash();
    let log0 = std::fs::read(&c.log).unwrap();
    let leg0 = std::fs::read(&c.leg0).unwrap();
    let mut leg1 = std::fs::read(&c.leg1).unwrap();
    let dirty: Vec<usize> = (0..512).filter(|&r| !clean_bit(&log0, r)).collect();
    let clean: Vec<usize> = (0..512).filter(|&r| clean_bit(&log0, r)).collect();
    assert!(dirty.len() >= 2 && clean.len() >= 2);
    assert!(dirty.contains(&511), "the test needs the last region dirty");
    // The mirror is 65500 sectors here: region 511 is short (65408..65500).
    let length = 65_500usize;
    let inside_last = 65_400 * 512 + 3;
    let past_end = 65_510 * 512 + 7;
    let in_dirty = [
        dirty[0] * REGION_BYTES + 100,
        dirty[dirty.len() / 2] * REGION_BYTES + REGION_BYTES - 1,
        inside_last,
    ];
    let untouched = [
        clean[0] * REGION_BYTES + 200,
        clean[clean.len() - 1] * REGION_BYTES,
        past_end,
    ];
    for &o in in_dirty.iter().chain(&untouched) {
        flip(&mut leg1, o);
    }
    std::fs::write(&c.leg1, &leg1).unwrap();
    let mut expected = leg1.clone();
    for &o in &in_dirty {
        expected[o] = leg0[o];
    }
    let backup = c.log.with_extension("bak");
    let len = length.to_string();
    let out = ok(
        "log_repair",
        &[
            "--resync",
            "--region-size",
            "128",
            "--length",
            &len,
            "--leg",
            s(&c.leg0),
            "--leg",
            &format!("{}:0", s(&c.leg1)),
            "--backup",
            s(&backup),
            s(&c.log),
        ],
    );
    assert!(
        out.contains(&format!("copied {} regions", dirty.len())),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&c.leg0).unwrap(),
        leg0,
        "leg 0 is never written"
    );
    let after = std::fs::read(&c.leg1).unwrap();
    for &o in &untouched {
        assert_ne!(
            after[o], leg0[o],
            "byte {o} outside the dirty regions was written"
        );
    }
    assert!(after == expected, "leg 1 differs from the expected result");
    let j = dump_json(&c.log, &[]);
    assert_eq!(
        (j["dirty"].as_u64(), j["clean"].as_u64()),
        (Some(0), Some(512))
    );
    // Only the kernel's buffer was written, and the backup holds what it replaced.
    let log1 = std::fs::read(&c.log).unwrap();
    assert_eq!(log1.len(), log0.len());
    assert_eq!(&log1[1536..], &log0[1536..]);
    assert_eq!(&log1[..1024], &log0[..1024]);
    assert!(std::fs::read(&backup).unwrap().starts_with(b"DMLOGBK\0"));
    // Nothing is left to do.
    let out = ok(
        "log_repair",
        &[
            "--resync",
            "--region-size",
            "128",
            "--length",
            &len,
            "--leg",
            s(&c.leg0),
            "--leg",
            s(&c.leg1),
            s(&c.log),
        ],
    );
    assert!(out.contains("needs no change"), "{out}");
}

#[test]
fn verify_marks_identical_regions_clean_and_reports_the_others() {
    let c = crash();
    let log0 = std::fs::read(&c.log).unwrap();
    let mut leg1 = std::fs::read(&c.leg1).unwrap();
    let dirty: Vec<usize> = (0..512).filter(|&r| !clean_bit(&log0, r)).collect();
    let clean: Vec<usize> = (0..512).filter(|&r| clean_bit(&log0, r)).collect();
    let d = dirty[dirty.len() / 3];
    flip(&mut leg1, d * REGION_BYTES + 4096);
    flip(&mut leg1, clean[5] * REGION_BYTES + 4096);
    std::fs::write(&c.leg1, &leg1).unwrap();
    let leg0 = std::fs::read(&c.leg0).unwrap();
    let legs = [s(&c.leg0), s(&c.leg1)];
    let out = ok(
        "log_repair",
        &mirror_args(&["--verify", "--dry-run"], &legs, s(&c.log)),
    );
    assert!(
        out.contains(&format!(
            "1 regions differ between legs and stay dirty: {d}..{}",
            d + 1
        )),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&c.log).unwrap(),
        log0,
        "dry run wrote the log"
    );
    let out = ok("log_repair", &mirror_args(&["--verify"], &legs, s(&c.log)));
    assert!(out.contains(&format!("{d}..{}", d + 1)), "{out}");
    let j = dump_json(&c.log, &[]);
    assert_eq!(dirty_ranges(&j), vec![d as u64..d as u64 + 1]);
    assert_eq!(std::fs::read(&c.leg0).unwrap(), leg0);
    assert_eq!(std::fs::read(&c.leg1).unwrap(), leg1, "verify wrote a leg");
}

#[test]
fn dry_run_resync_writes_nothing() {
    let c = crash();
    let before = contents(&[&c.log, &c.leg0, &c.leg1]);
    let mut leg1 = before[2].clone();
    flip(&mut leg1, 48 * REGION_BYTES);
    std::fs::write(&c.leg1, &leg1).unwrap();
    let out = ok(
        "log_repair",
        &mirror_args(
            &["--resync", "--dry-run"],
            &[s(&c.leg0), s(&c.leg1)],
            s(&c.log),
        ),
    );
    assert!(
        out.contains("would copy") && out.contains("dry run"),
        "{out}"
    );
    assert_eq!(std::fs::read(&c.log).unwrap(), before[0]);
    assert_eq!(std::fs::read(&c.leg1).unwrap(), leg1);
}

#[test]
fn legs_that_do_not_fit_the_mirror_are_refused_before_anything_is_written() {
    let c = crash();
    let log0 = std::fs::read(&c.log).unwrap();
    let leg1_before = std::fs::read(&c.leg1).unwrap();
    let short = c.leg1.with_extension("short");
    std::fs::write(&short, vec![0u8; 1 << 20]).unwrap();
    let o = run(
        "log_repair",
        &mirror_args(&["--resync"], &[s(&c.leg0), s(&short)], s(&c.log)),
    );
    assert_eq!(o.code, 1);
    let err = o.stderr.as_str();
    assert!(
        err.contains(&format!(
            "log_repair: {}: error: leg 1: holds 1048576 bytes, but the mirror needs 33554432",
            s(&short)
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&short).unwrap(), vec![0u8; 1 << 20]);
    // A region size that does not match the log's region count.
    let o = run(
        "log_repair",
        &[
            "--resync",
            "--region-size",
            "128",
            "--length",
            "131072",
            "--leg",
            s(&c.leg0),
            "--leg",
            s(&c.leg1),
            s(&c.log),
        ],
    );
    assert_eq!(o.code, 1);
    let err = o.stderr.as_str();
    assert!(
        err.contains(
            "the log has 512 regions, but a length of 131072 sectors in regions of 128 \
             sectors makes 1024; take both from the mirror's table"
        ) && !err.contains("likely"),
        "{err}"
    );
    assert_eq!(std::fs::read(&c.log).unwrap(), log0);
    assert_eq!(std::fs::read(&c.leg1).unwrap(), leg1_before);
    // The log given as a leg.
    let o = run(
        "log_repair",
        &[
            "--verify",
            "--region-size",
            "2",
            "--length",
            "1024",
            "--leg",
            s(&c.leg0),
            "--leg",
            s(&c.log),
            s(&c.log),
        ],
    );
    assert_eq!(o.code, 1);
    let err = o.stderr.as_str();
    assert!(
        err.starts_with(&format!(
            "log_repair: {}: error: leg 1: is the log itself",
            s(&c.log)
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&c.log).unwrap(), log0);
    // Fewer than two legs is a usage error.
    let o = run(
        "log_repair",
        &[
            "--resync",
            "--region-size",
            "128",
            "--leg",
            s(&c.leg0),
            s(&c.log),
        ],
    );
    assert_eq!(o.code, 2);
}

/// Writes a variant of the crash log and returns its path.
fn variant(dir: &Path, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut data = std::fs::read(unpack("log-crash.log.img.gz", dir)).unwrap();
    f(&mut data);
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn hostile_logs_get_a_one_line_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (
            variant(d, "bad-magic", |b| b[0..4].fill(0)),
            "log header: bad magic 0x00000000",
        ),
        (
            variant(d, "version-3", |b| b[4] = 3),
            "log header: unsupported version 3",
        ),
        (
            variant(d, "huge-nr", |b| {
                b[8..16].copy_from_slice(&(1u64 << 32).to_le_bytes())
            }),
            "log header: nr_regions 4294967296",
        ),
        (
            variant(d, "truncated", |b| b.truncate(1024 + 10)),
            "clean bitmap: device holds 1034 bytes, but 1088",
        ),
        (variant(d, "small", |b| b.truncate(1024 + 64)), "log buffer"),
        (
            variant(d, "tiny", |b| b.truncate(10)),
            "log header: device holds 10 bytes",
        ),
    ];
    for (path, expect) in &cases {
        let before = std::fs::read(path).unwrap();
        let mut runs: Vec<(&str, Vec<&str>)> = vec![
            ("log_dump", vec![]),
            ("log_dump", vec!["--format", "text"]),
            ("log_repair", vec!["--clear-stray-bits"]),
            (
                "log_repair",
                vec!["--mark-clean", "0..4", "--unsafe-legs-identical"]
                    .into_iter()
                    .chain(CRASH_GEOMETRY)
                    .collect(),
            ),
        ];
        if !path.ends_with("version-3") {
            // The header rewrites fix a bad version (a documented repair); every other
            // hostile log is refused by them too.
            runs.push(("log_repair", vec!["--force-resync"]));
            runs.push(("log_repair", vec!["--rewrite-header"]));
        }
        for (bin, mut args) in runs {
            args.push(s(path));
            let o = run(bin, &args);
            let err = o.stderr.as_str();
            assert_eq!(o.code, 1, "{bin} {args:?}: {err}");
            assert!(o.stdout.is_empty(), "{bin} {args:?} printed a report");
            assert_eq!(err.lines().count(), 1, "{bin} {args:?}: {err}");
            assert!(err.starts_with(&format!("{bin}: {}: ", s(path))), "{err}");
            assert!(err.contains(expect), "{bin} {args:?}: {err}");
            assert_eq!(std::fs::read(path).unwrap(), before, "{bin} {args:?} wrote");
        }
    }
    // No output file is left behind by a failing log_dump.
    let out = d.join("out.xml");
    let o = run("log_dump", &["-o", s(&out), s(&cases[0].0)]);
    assert_eq!(o.code, 1);
    assert!(!out.exists());
}

#[test]
fn rewrite_header_fixes_a_bad_version_and_keeps_the_bits() {
    let dir = tempfile::tempdir().unwrap();
    let orig = std::fs::read(unpack("log-crash.log.img.gz", dir.path())).unwrap();
    let p = variant(dir.path(), "v3", |b| b[4] = 3);
    let out = ok("log_repair", &["--rewrite-header", "--dry-run", s(&p)]);
    assert!(
        out.contains("would change: header: version 3 -> 2"),
        "{out}"
    );
    ok("log_repair", &["--rewrite-header", s(&p)]);
    assert_eq!(std::fs::read(&p).unwrap(), orig);
    // Version 1 reads like 2 with a warning, and any repair writes 2.
    let p = variant(dir.path(), "v1", |b| b[4] = 1);
    let o = run("log_dump", &[s(&p)]);
    assert!(o.success());
    assert!(o.stderr.as_str().contains("version 1"));
    let j = dump_json(&p, &[]);
    assert_eq!(j["dirty"], 208);
    ok("log_repair", &["--clear-stray-bits", s(&p)]);
    assert_eq!(std::fs::read(&p).unwrap(), orig);
    // A huge nr_regions is fixed by giving the count.
    let p = variant(dir.path(), "huge", |b| {
        b[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes())
    });
    ok(
        "log_repair",
        &[
            "--rewrite-header",
            "--region-size",
            "128",
            "--length",
            "65536",
            s(&p),
        ],
    );
    assert_eq!(std::fs::read(&p).unwrap(), orig);
}

#[test]
fn force_resync_marks_every_region_dirty_within_buf_size() {
    let dir = tempfile::tempdir().unwrap();
    // log-clean: 8192 regions, the bitmap fills the two sectors after the header area.
    let p = unpack("log-clean.log.img.gz", dir.path());
    let m = manifest("log-clean");
    let nr = m["mirror_instances"][0]["nr_regions"].as_u64().unwrap();
    let before = std::fs::read(&p).unwrap();
    ok("log_repair", &["--force-resync", s(&p)]);
    let after = std::fs::read(&p).unwrap();
    let j = dump_json(&p, &[]);
    assert_eq!(
        (j["dirty"].as_u64(), j["clean"].as_u64()),
        (Some(nr), Some(0))
    );
    assert_eq!(j["buf_size"], 2048);
    assert_eq!(&after[..1024], &before[..1024]);
    assert!(after[1024..2048].iter().all(|&b| b == 0));
    assert_eq!(&after[2048..], &before[2048..]);
}

#[test]
fn a_log_can_be_recreated_from_nothing_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zero");
    std::fs::write(&p, vec![0u8; 4096]).unwrap();
    let o = run(
        "log_repair",
        &["--force-resync", "--nr-regions", "512", s(&p)],
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.as_str().contains("--force"));
    ok(
        "log_repair",
        &["--force-resync", "--force", "--nr-regions", "512", s(&p)],
    );
    let j = dump_json(&p, &[]);
    assert_eq!(
        (j["nr_regions"].as_u64(), j["dirty"].as_u64()),
        (Some(512), Some(512))
    );
    assert_eq!(dirty_ranges(&j), vec![0..512]);
}

#[test]
fn stray_bits_are_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let p = unpack("log-clean.log.img.gz", dir.path());
    // Shrink the header to 8100 regions: bits 8100..8127 of the last 64-bit word stay set.
    ok(
        "log_repair",
        &["--rewrite-header", "--nr-regions", "8100", s(&p)],
    );
    let j = dump_json(&p, &[]);
    assert_eq!(
        (j["clean"].as_u64(), j["stray_bits"].as_u64()),
        (Some(8100), Some(28))
    );
    ok("log_repair", &["--clear-stray-bits", s(&p)]);
    let j = dump_json(&p, &[]);
    assert_eq!(
        (j["clean"].as_u64(), j["stray_bits"].as_u64()),
        (Some(8100), Some(0))
    );
    let raw = std::fs::read(&p).unwrap();
    assert_eq!(raw[1024 + 8100 / 8], 0x0F);
    assert!(raw[1024 + 8100 / 8 + 1..1024 + 1016]
        .iter()
        .all(|&b| b == 0));
}

#[test]
fn mark_clean_needs_the_unsafe_flag_and_the_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let p = unpack("log-crash.log.img.gz", dir.path());
    let before = std::fs::read(&p).unwrap();
    let o = run("log_repair", &["--mark-clean", "48..50", s(&p)]);
    assert_eq!(o.code, 2);
    let err = o.stderr.as_str();
    assert!(err.contains("--unsafe-legs-identical"), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
    // Marking regions clean is about the mirror's sectors: its geometry must be given.
    for partial in [&[][..], &CRASH_GEOMETRY[..2], &CRASH_GEOMETRY[2..]] {
        let mut args = vec!["--mark-clean", "48..50", "--unsafe-legs-identical"];
        args.extend(partial);
        args.push(s(&p));
        let o = run("log_repair", &args);
        let err = o.stderr.as_str();
        assert_eq!(o.code, 2, "{args:?}: {err}");
        assert!(
            err.contains("--length") || err.contains("--region-size"),
            "{err}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), before);
    }
    let o = run(
        "log_repair",
        &[
            "--mark-clean",
            "500..513",
            "--unsafe-legs-identical",
            CRASH_GEOMETRY[0],
            CRASH_GEOMETRY[1],
            CRASH_GEOMETRY[2],
            CRASH_GEOMETRY[3],
            s(&p),
        ],
    );
    assert_eq!(o.code, 1);
    let err = o.stderr.as_str();
    assert!(err.contains("500..513") && err.contains("512"), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
    ok(
        "log_repair",
        &[
            "--mark-clean",
            "48..50,60",
            "--unsafe-legs-identical",
            CRASH_GEOMETRY[0],
            CRASH_GEOMETRY[1],
            CRASH_GEOMETRY[2],
            CRASH_GEOMETRY[3],
            s(&p),
        ],
    );
    let raw = std::fs::read(&p).unwrap();
    for r in [48, 49, 60] {
        assert!(clean_bit(&raw, r) && !clean_bit(&before, r));
    }
    assert!(!clean_bit(&raw, 50) && !clean_bit(&raw, 59) && !clean_bit(&raw, 61));
}

#[test]
fn a_backup_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let p = unpack("log-crash.log.img.gz", dir.path());
    let before = std::fs::read(&p).unwrap();
    let bak = dir.path().join("bak");
    std::fs::write(&bak, b"keep").unwrap();
    let o = run(
        "log_repair",
        &["--force-resync", "--backup", s(&bak), s(&p)],
    );
    assert_eq!(o.code, 1);
    assert_eq!(std::fs::read(&bak).unwrap(), b"keep");
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

#[test]
fn a_backup_that_cannot_be_made_stops_a_resync_before_any_leg_is_written() {
    let c = crash();
    let log0 = std::fs::read(&c.log).unwrap();
    let mut leg1 = std::fs::read(&c.leg1).unwrap();
    flip(&mut leg1, 48 * REGION_BYTES);
    std::fs::write(&c.leg1, &leg1).unwrap();
    let bak = c.log.with_extension("no-such-dir").join("bak");
    let o = run(
        "log_repair",
        &mirror_args(
            &["--resync", "--backup", s(&bak)],
            &[s(&c.leg0), s(&c.leg1)],
            s(&c.log),
        ),
    );
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1, "{err}");
    assert!(err.contains("creating the backup"), "{err}");
    assert_eq!(std::fs::read(&c.leg1).unwrap(), leg1, "a leg was written");
    assert_eq!(std::fs::read(&c.log).unwrap(), log0);
}

/// The arguments of `--leg` for each path, in order.
fn leg_args<'a>(legs: &[&'a Path]) -> Vec<&'a str> {
    legs.iter().flat_map(|l| ["--leg", s(l)]).collect()
}

#[test]
fn raw_partition_legs_need_the_mirrors_geometry_and_no_value_is_guessed() {
    let c = crash();
    // Raw partitions: each leg holds more than the mirror's 65536 sectors, so the legs'
    // size says nothing about the mirror's length.
    for leg in [&c.leg0, &c.leg1] {
        let f = std::fs::OpenOptions::new().write(true).open(leg).unwrap();
        f.set_len(64 << 20).unwrap();
    }
    let mut leg1 = std::fs::read(&c.leg1).unwrap();
    flip(&mut leg1, 48 * REGION_BYTES + 10);
    std::fs::write(&c.leg1, &leg1).unwrap();
    let files = [c.log.as_path(), c.leg0.as_path(), c.leg1.as_path()];
    let before = contents(&files);
    let legs = leg_args(&[&c.leg0, &c.leg1]);
    let refused = |args: &[&str], status: i32, expect: &[&str]| {
        let mut all = args.to_vec();
        all.extend(&legs);
        all.push(s(&c.log));
        let o = run("log_repair", &all);
        let err = o.stderr.as_str();
        assert_eq!(o.code, status, "{all:?}: {err}");
        for e in expect {
            assert!(err.contains(e), "{all:?}: {err}");
        }
        assert!(!err.contains("likely"), "{all:?} guessed: {err}");
        assert_eq!(contents(&files), before, "{all:?} wrote");
    };
    // The right region size and a wrong one, alone: both a usage error asking for the length.
    for mode in ["--resync", "--verify"] {
        for rs in ["128", "256"] {
            refused(&[mode, "--region-size", rs], 2, &["--length"]);
        }
    }
    // A geometry the log's 512 regions contradict: the numbers, and where to read the real
    // ones, but no value.
    refused(
        &["--resync", "--region-size", "256", "--length", "65536"],
        1,
        &[
            "the log has 512 regions, but a length of 65536 sectors in regions of 256 sectors \
             makes 256",
            "dmsetup table",
            "lvs --units s -o +regionsize,size",
        ],
    );
    // A length the legs cannot hold.
    refused(
        &["--resync", "--region-size", "512", "--length", "262144"],
        1,
        &["leg 0: holds 67108864 bytes, but the mirror needs 134217728"],
    );
    // The table's geometry: region 48 is copied, the sectors past the mirror untouched.
    let mut args = vec!["--resync", "--region-size", "128", "--length", "65536"];
    args.extend(&legs);
    args.push(s(&c.log));
    ok("log_repair", &args);
    assert_eq!(std::fs::read(&c.leg1).unwrap(), before[1]);
    assert_eq!(dump_json(&c.log, &[])["dirty"], 0);
}

#[test]
fn legs_given_in_the_wrong_order_are_put_back_by_undo() {
    let c = crash();
    let dir = c.log.parent().unwrap().to_path_buf();
    // Leg 1 is stale in dirty region 48; the operator swaps the legs, so the resync
    // copies the stale data over the good leg.
    let mut leg1 = std::fs::read(&c.leg1).unwrap();
    flip(&mut leg1, 48 * REGION_BYTES + 10);
    std::fs::write(&c.leg1, &leg1).unwrap();
    let files = [c.log.as_path(), c.leg0.as_path(), c.leg1.as_path()];
    let before = contents(&files);
    let bak = dir.join("undo.bak");
    let mut args = CRASH_GEOMETRY.to_vec();
    args.extend(leg_args(&[&c.leg1, &c.leg0]));
    args.extend(["--resync", "--backup", s(&bak), s(&c.log)]);
    let out = ok("log_repair", &args);
    assert!(
        out.contains(&format!(
            "copied 208 regions (13631488 bytes) from leg 0 {} to leg 1 {}",
            s(&c.leg1),
            s(&c.leg0)
        )),
        "{out}"
    );
    assert_ne!(
        std::fs::read(&c.leg0).unwrap(),
        before[1],
        "the good leg was overwritten"
    );
    // The backup holds the log and the 208 dirty regions of the leg written, not more; its
    // size is announced before it is written.
    let size = std::fs::metadata(&bak).unwrap().len();
    assert!(
        size > 208 * REGION_BYTES as u64 && size < 208 * REGION_BYTES as u64 + 65536,
        "{size}"
    );
    let announced = out.find("backup: writing").unwrap();
    assert!(out[announced..].starts_with(&format!("backup: writing {size} bytes")));
    assert!(announced < out.find("copied").unwrap());
    let after_run = contents(&files);
    // A dry run checks and writes nothing.
    let out = ok("log_repair", &["--undo", s(&bak), "--dry-run", s(&c.log)]);
    assert!(
        out.contains("would put back 13631488 bytes of leg 1"),
        "{out}"
    );
    assert_eq!(contents(&files), after_run);
    // A copy of the log is not the log the backup was taken from.
    let copy = dir.join("copy.img");
    std::fs::copy(&c.log, &copy).unwrap();
    let o = run("log_repair", &["--undo", s(&bak), s(&copy)]);
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1);
    assert!(
        err.starts_with(&format!(
            "log_repair: {}: error: undo: not the device or file the backup was taken from",
            s(&copy)
        )) && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(contents(&files), after_run);
    // The undo puts every byte back, the log's and the legs'.
    let o = run(
        "log_repair",
        &["--undo", s(&bak), "--format", "json", s(&c.log)],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j["outcome"], "written");
    assert_eq!(j["bytes_written"], 1536 + 208 * REGION_BYTES as u64);
    assert!(
        contents(&files) == before,
        "the undo did not put everything back"
    );
    // Bytes changed since the backup are not overwritten.
    let mut leg0 = before[1].clone();
    flip(&mut leg0, 48 * REGION_BYTES + 20);
    std::fs::write(&c.leg0, &leg0).unwrap();
    let o = run("log_repair", &["--undo", s(&bak), s(&c.log)]);
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1);
    assert!(
        err.starts_with(&format!(
            "log_repair: {}: error: leg 1: undo: bytes 3145728..3211264 hold neither",
            s(&c.leg0)
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&c.leg0).unwrap(), leg0);
    // A damaged backup is refused before anything is written.
    let mut damaged = std::fs::read(&bak).unwrap();
    let last = damaged.len() - 100;
    damaged[last] ^= 1;
    let bad = dir.join("damaged.bak");
    std::fs::write(&bad, &damaged).unwrap();
    std::fs::write(&c.leg0, &before[1]).unwrap();
    let o = run("log_repair", &["--undo", s(&bad), s(&c.log)]);
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1);
    assert!(
        err.starts_with(&format!("log_repair: {}: error: backup: record ", s(&bad)))
            && err.contains("bad checksum"),
        "{err}"
    );
    assert!(contents(&files) == before);
}

#[test]
fn json_comes_out_when_a_run_fails() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = dir.path().join("zeros.img");
    std::fs::write(&zeros, vec![0u8; 4096]).unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let runs: [(&str, Vec<&str>); 4] = [
        ("log_repair", vec!["--force-resync", s(&zeros)]),
        (
            "log_repair",
            vec!["--mark-clean", "0..1", "--unsafe-legs-identical"]
                .into_iter()
                .chain(["--region-size", "64", "--length", "65536", s(&log)])
                .collect(),
        ),
        ("log_dump", vec![s(&zeros)]),
        (
            "log_dump",
            vec!["--region-size", "64", "--length", "65536", s(&log)],
        ),
    ];
    for (bin, mut args) in runs {
        args.extend(["--format", "json"]);
        let o = run(bin, &args);
        let err = o.stderr.as_str();
        assert_eq!(o.code, 1, "{bin} {args:?}: {err}");
        let j: serde_json::Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("{bin} {args:?}: no JSON ({e}): {err}"));
        assert_eq!(j["outcome"], "failed", "{j}");
        // The error line's words after `TOOL: FILE: error: ` (docs/messages.md).
        let what = j["error"].as_str().unwrap();
        assert!(
            err.trim_end().starts_with(&format!("{bin}: "))
                && err.trim_end().ends_with(&format!(": error: {what}")),
            "{j}: {err}"
        );
    }
    // Usage errors too: the object on stdout, clap's message on stderr, exit status 2.
    let usage: [(&str, Vec<&str>); 3] = [
        (
            "log_repair",
            vec!["--resync", "--region-size", "128", s(&log)],
        ),
        (
            "log_repair",
            vec!["--clear-stray-bits", "--leg", "x", s(&log)],
        ),
        ("log_dump", vec!["--region-size", "128", s(&log)]),
    ];
    for (bin, mut args) in usage {
        args.extend(["--format", "json"]);
        let o = run(bin, &args);
        assert_eq!(o.code, 2, "{bin} {args:?}");
        let j: serde_json::Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("{bin} {args:?}: no JSON ({e})"));
        assert_eq!(j["outcome"], "failed", "{j}");
        let error = j["error"].as_str().unwrap();
        // clap's first paragraph, its lines joined: what the JSON's error says.
        let stderr = o.stderr.as_str();
        let first = stderr.split("\n\n").next().unwrap_or_default();
        let first = first.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(first, format!("{bin}: error: {error}"), "{j}");
    }
}

#[test]
fn every_error_names_its_file_before_the_severity() {
    let c = crash();
    let dir = c.log.parent().unwrap().to_path_buf();
    let missing = dir.join("missing.img");
    let bak = dir.join("no-such-dir").join("bak");
    let mut leg1 = std::fs::read(&c.leg1).unwrap();
    flip(&mut leg1, 48 * REGION_BYTES);
    std::fs::write(&c.leg1, &leg1).unwrap();
    let with_legs = |legs: &[&Path], extra: &[&str]| {
        let mut a = vec!["--verify"];
        a.extend(CRASH_GEOMETRY);
        a.extend(leg_args(legs));
        a.extend(extra);
        a.push(s(&c.log));
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &Path, &str)> = vec![
        (
            with_legs(&[&c.leg0, &c.leg0], &[]),
            &c.leg0,
            "leg 1: is the same device as leg 0",
        ),
        (
            with_legs(&[&c.leg0, &missing], &[]),
            &missing,
            "leg 1: opening",
        ),
        (
            with_legs(&[&c.leg0, &c.leg1], &["--backup", s(&bak)]),
            &bak,
            "backup: creating the backup",
        ),
        (
            ["--rewrite-header", "--nr-regions", "100", s(&c.log)]
                .into_iter()
                .chain(CRASH_GEOMETRY)
                .map(String::from)
                .collect(),
            &c.log,
            "--nr-regions 100 disagrees",
        ),
    ];
    for (args, file, what) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run("log_repair", &args);
        let err = o.stderr.as_str();
        assert_eq!(o.code, 1, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("log_repair: {}: error: {what}", s(file))),
            "{args:?}: {err}"
        );
    }
}

/// The writes of a traced run, in order: `(syscall, path of its descriptor)`.
fn traced(args: &[&str], cwd: &Path) -> Option<Vec<(String, String)>> {
    let trace = cwd.join("strace.out");
    let o = try_outcome(
        std::process::Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=openat,fsync,fdatasync,pwrite64,write,close",
            ])
            .arg("-o")
            .arg(&trace)
            .arg(common::exe("log_repair"))
            .args(args)
            .current_dir(cwd),
    )
    .ok()?;
    if !o.success() || !trace.exists() {
        let err = o.stderr.as_str();
        // strace missing or not allowed to trace: nothing to check here.
        if err.contains("ptrace") || !trace.exists() {
            return None;
        }
        panic!("log_repair {args:?} failed: {err}");
    }
    let mut fds = std::collections::HashMap::new();
    let mut calls = Vec::new();
    for line in std::fs::read_to_string(&trace).unwrap().lines() {
        let call = line.split_once(' ').map_or(line, |(_, c)| c).trim();
        let (name, rest) = call.split_once('(').unwrap_or((call, ""));
        let ret = call.rsplit_once("= ").map(|(_, r)| r.trim());
        match name {
            "openat" => {
                let path = rest.split('"').nth(1).unwrap_or("").to_string();
                if let Some(fd) = ret.and_then(|r| r.parse::<i32>().ok()) {
                    fds.insert(fd, path);
                }
            }
            "fsync" | "fdatasync" | "pwrite64" | "write" => {
                let fd: i32 = rest.split([',', ')']).next().unwrap().parse().unwrap();
                let path = fds.get(&fd).cloned().unwrap_or_default();
                calls.push((name.to_string(), path));
            }
            _ => {}
        }
    }
    Some(calls)
}

#[test]
fn the_backup_and_its_directory_are_synced_before_the_first_write() {
    let c = crash();
    let dir = c.log.parent().unwrap().to_path_buf();
    let mut leg1 = std::fs::read(&c.leg1).unwrap();
    flip(&mut leg1, 48 * REGION_BYTES);
    std::fs::write(&c.leg1, &leg1).unwrap();
    std::fs::create_dir(dir.join("keep")).unwrap();
    let mut resync = vec!["--resync", "--backup", "keep/undo.bak"];
    resync.extend(CRASH_GEOMETRY);
    resync.extend(leg_args(&[&c.leg0, &c.leg1]));
    resync.push(s(&c.log));
    // A path with a directory part, and one without ("." is synced then).
    let runs = [
        (resync, "keep/undo.bak", "keep"),
        (
            vec!["--force-resync", "--backup", "undo2.bak", s(&c.log)],
            "undo2.bak",
            ".",
        ),
    ];
    for (args, file, parent) in runs {
        let Some(calls) = traced(&args, &dir) else {
            eprintln!("strace cannot trace here: the order of the syncs was not checked");
            return;
        };
        let at = |name: &str, path: &str| {
            calls
                .iter()
                .position(|(n, p)| n == name && p == path)
                .unwrap_or_else(|| panic!("{args:?}: no {name} on {path}: {calls:?}"))
        };
        let device_write = calls
            .iter()
            .position(|(n, p)| n == "pwrite64" && (p == s(&c.log) || p == s(&c.leg1)))
            .unwrap_or_else(|| panic!("{args:?}: no write to the log or a leg: {calls:?}"));
        let file_sync = at("fsync", file);
        let dir_sync = at("fsync", parent);
        assert!(
            file_sync < dir_sync && dir_sync < device_write,
            "{args:?}: {calls:?}"
        );
    }
}

#[test]
fn an_undo_interrupted_in_the_log_is_named_and_finished_by_running_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let before = std::fs::read(&log).unwrap();
    let bak = dir.path().join("log.bak");
    ok(
        "log_repair",
        &["--force-resync", "--backup", s(&bak), s(&log)],
    );
    let after_run = std::fs::read(&log).unwrap();
    assert_ne!(after_run, before);
    // The log's record (docs/dirty-log-format.md §9.6): after the header of header_len
    // bytes, 32 bytes (length at 16, new_crc at 24), then the log's bytes before the run.
    let backup = std::fs::read(&bak).unwrap();
    let at = u32::from_le_bytes(backup[16..20].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(backup[at + 16..at + 24].try_into().unwrap()) as usize;
    let new_crc = &backup[at + 24..at + 28];
    let saved = &backup[at + 32..at + 32 + len];
    assert_eq!(saved, &before[..len]);
    // The undo's header over the run's bits: what a crash after its first write leaves.
    let mut header = b"LOGUNDO\0".to_vec();
    header.extend(crc32c::crc32c(saved).to_le_bytes());
    header.extend(new_crc);
    let mut interrupted = after_run.clone();
    interrupted[..16].copy_from_slice(&header);
    std::fs::write(&log, &interrupted).unwrap();
    let o = run("log_dump", &[s(&log)]);
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1);
    assert!(
        err.ends_with(
            "an interrupted log_repair --undo left this log half-written: run the same --undo \
             again\n"
        ),
        "{err}"
    );
    // The header of an undo of another backup is not this undo's.
    let mut other = interrupted.clone();
    other[9] ^= 1;
    std::fs::write(&log, &other).unwrap();
    let o = run("log_repair", &["--undo", s(&bak), s(&log)]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .as_str()
            .contains("hold neither what the run wrote"),
        "{}",
        o.stderr.as_str()
    );
    assert_eq!(std::fs::read(&log).unwrap(), other);
    // This undo's header: run again, the undo finishes.
    std::fs::write(&log, &interrupted).unwrap();
    ok("log_repair", &["--undo", s(&bak), s(&log)]);
    assert!(
        std::fs::read(&log).unwrap() == before,
        "the undo did not finish"
    );
}

/// Runs log_repair in directory `dir`, stdout to `stdout` (piped when `None`).
fn run_in(dir: &Path, args: &[&str], stdout: Option<std::process::Stdio>) -> Outcome {
    let mut cmd = command("log_repair");
    cmd.args(args).current_dir(dir);
    if let Some(out) = stdout {
        cmd.stdout(out);
    }
    outcome(&mut cmd)
}

/// The kernel's crash log and legs in `a/` (leg 1 stale in region 48), and in `b/` two
/// unrelated files named like the legs.
struct TwoDirs {
    _dir: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
}

fn two_dirs() -> TwoDirs {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    for name in ["log", "leg0", "leg1"] {
        unpack(&format!("log-crash.{name}.img.gz"), &a);
        std::fs::rename(
            a.join(format!("log-crash.{name}.img")),
            a.join(format!("{name}.img")),
        )
        .unwrap();
    }
    let mut leg1 = std::fs::read(a.join("leg1.img")).unwrap();
    flip(&mut leg1, 48 * REGION_BYTES + 10);
    std::fs::write(a.join("leg1.img"), &leg1).unwrap();
    for name in ["leg0.img", "leg1.img"] {
        std::fs::write(b.join(name), vec![0x33; leg1.len()]).unwrap();
    }
    TwoDirs { _dir: dir, a, b }
}

/// A resync with relative paths in `a/`, backed up to `a/undo.bak`.
fn resync_in_a(t: &TwoDirs) {
    let mut args = CRASH_GEOMETRY.to_vec();
    args.extend([
        "--resync", "--backup", "undo.bak", "--leg", "leg0.img", "--leg", "leg1.img", "log.img",
    ]);
    let o = run_in(&t.a, &args, None);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn an_undo_from_another_directory_puts_back_the_devices_the_backup_was_taken_from() {
    let t = two_dirs();
    let files = ["log.img", "leg0.img", "leg1.img"].map(|n| t.a.join(n));
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let others = [t.b.join("leg0.img"), t.b.join("leg1.img")];
    let others: Vec<&Path> = others.iter().map(PathBuf::as_path).collect();
    let before = contents(&files);
    let unrelated = contents(&others);
    resync_in_a(&t);
    assert_ne!(contents(&files), before);
    // The backup names the files of a/, whatever directory the undo runs in.
    let o = run_in(&t.b, &["--undo", "../a/undo.bak", "../a/log.img"], None);
    let out = o.stdout.as_str();
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(out.contains("is intact and matches the devices"), "{out}");
    assert!(contents(&files) == before, "the undo did not put a/ back");
    assert!(contents(&others) == unrelated, "the undo wrote in b/");

    // Leg 0 replaced by a copy of itself: same path, another inode. The refusal says what
    // differs, and --force is the remedy it names.
    std::fs::remove_file(t.a.join("undo.bak")).unwrap();
    resync_in_a(&t);
    let after_run = contents(&files);
    let leg0 = t.a.join("leg0.img");
    std::fs::copy(&leg0, t.a.join("copy")).unwrap();
    std::fs::rename(t.a.join("copy"), &leg0).unwrap();
    let o = run_in(&t.b, &["--undo", "../a/undo.bak", "../a/log.img"], None);
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1, "{err}");
    let abs = std::fs::canonicalize(&leg0).unwrap();
    assert!(
        err.starts_with(&format!(
            "log_repair: {}: error: leg 0: undo: not the device or file the backup was taken \
             from: {}: inode ",
            abs.display(),
            abs.display()
        )) && err.trim_end().ends_with(
            "; if it is the same file, replaced by a copy of itself, --force puts the backup \
             back anyway"
        ),
        "{err}"
    );
    assert!(contents(&files) == after_run);
    // --force accepts it, and the report says what it accepted.
    let o = run_in(
        &t.b,
        &["--undo", "../a/undo.bak", "--force", "../a/log.img"],
        None,
    );
    let out = o.stdout.as_str();
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!out.contains("matches the devices"), "{out}");
    assert!(
        out.contains(&format!(
            "; accepted by --force: leg 0 {} is not the device or file the backup was taken \
             from ({})\n",
            abs.display(),
            abs.display()
        )),
        "{out}"
    );
    assert!(contents(&files) == before);
    assert!(contents(&others) == unrelated);
}

/// `bak` rewritten as log_repair wrote it before paths were absolute: version 1, each path
/// as `names` gives it.
fn as_version_1(bak: &Path, names: &[&str]) {
    use era_log_tools::log::backup::BackupHeader;
    let bytes = std::fs::read(bak).unwrap();
    let mut r: &[u8] = &bytes;
    let mut header = BackupHeader::read(&mut r).unwrap();
    let records = r.to_vec();
    header.log.path = names[0].into();
    for (leg, name) in header.legs.iter_mut().zip(&names[1..]) {
        leg.id.path = (*name).into();
    }
    let mut new = header.encode();
    new[8..12].copy_from_slice(&1u32.to_le_bytes());
    let body = new.len() - 4;
    let crc = crc32c::crc32c(&new[..body]);
    new[body..].copy_from_slice(&crc.to_le_bytes());
    new.extend(records);
    std::fs::write(bak, new).unwrap();
}

#[test]
fn an_earlier_backup_with_relative_paths_is_refused_elsewhere_without_a_force_hint() {
    let t = two_dirs();
    let others = [t.b.join("leg0.img"), t.b.join("leg1.img")];
    let others: Vec<&Path> = others.iter().map(PathBuf::as_path).collect();
    let unrelated = contents(&others);
    resync_in_a(&t);
    as_version_1(&t.a.join("undo.bak"), &["log.img", "leg0.img", "leg1.img"]);
    let o = run_in(&t.b, &["--undo", "../a/undo.bak", "../a/log.img"], None);
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1, "{err}");
    let here = std::fs::canonicalize(t.b.join("leg0.img")).unwrap();
    assert!(
        err.starts_with(&format!(
            "log_repair: leg0.img: error: leg 0: undo: not the device or file the backup was \
             taken from: the backup records the relative path leg0.img (a backup of an earlier \
             log_repair, which does not record the directory it ran in), here {}; inode ",
            here.display()
        )) && err.trim_end().ends_with(
            "; run the undo in the directory the run was made in, or give the log and the \
             legs (--leg) it wrote by their full paths"
        ) && !err.contains("--force"),
        "{err}"
    );
    assert!(contents(&others) == unrelated);
    // In the directory of the run, the earlier backup is still put back.
    let o = run_in(&t.a, &["--undo", "undo.bak", "log.img"], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn a_lost_report_ends_the_run_with_exit_status_1_once_the_run_is_over() {
    let t = two_dirs();
    let log = t.a.join("log.img");
    let lost = |what: &str| {
        format!(
            "log_repair: stdout: error: No space left on device (os error 28); the report was \
             lost; {what}\n"
        )
    };
    let cases: [(Vec<&str>, &str, bool); 4] = [
        (
            vec!["--force-resync", "log.img"],
            "the log was written",
            true,
        ),
        (
            vec!["--force-resync", "--format", "json", "log.img"],
            "the log was written",
            true,
        ),
        (
            mirror_args(
                &["--verify", "--dry-run"],
                &["leg0.img", "leg1.img"],
                "log.img",
            ),
            "nothing was written (dry run)",
            false,
        ),
        (
            vec!["--force-resync", "--dry-run", "--format", "json", "log.img"],
            "nothing was written (dry run)",
            false,
        ),
    ];
    for (args, what, writes) in cases {
        let fresh = common::fixture("log-crash.log.img.gz");
        std::fs::write(&log, &fresh).unwrap();
        let o = run_in(&t.a, &args, Some(dev_full()));
        assert_eq!(o.code, 1, "{args:?}");
        assert_eq!(o.stderr.as_str(), lost(what), "{args:?}");
        // The repair was not stopped by its report.
        assert_eq!(std::fs::read(&log).unwrap() != fresh, writes, "{args:?}");
        // A reader that went away: exit status 1, quietly.
        std::fs::write(&log, &fresh).unwrap();
        let o = run_in(&t.a, &args, Some(broken_pipe()));
        assert_eq!(o.code, 1, "{args:?}");
        assert_eq!(o.stderr.as_str(), "", "{args:?}");
        assert_eq!(std::fs::read(&log).unwrap() != fresh, writes, "{args:?}");
    }
    // An undo whose report is lost.
    std::fs::write(&log, common::fixture("log-crash.log.img.gz")).unwrap();
    resync_in_a(&t);
    let o = run_in(&t.a, &["--undo", "undo.bak", "log.img"], Some(dev_full()));
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr.as_str(), lost("the backup was put back"));
    assert_eq!(
        std::fs::read(&log).unwrap(),
        common::fixture("log-crash.log.img.gz")
    );
}

#[test]
fn a_resync_with_nothing_dirty_ends_its_copy_line_without_a_colon() {
    let c = crash();
    let mut args = CRASH_GEOMETRY.to_vec();
    args.extend(leg_args(&[&c.leg0, &c.leg1]));
    args.extend(["--resync", s(&c.log)]);
    ok("log_repair", &args);
    let line = format!(
        "copied 0 regions (0 bytes) from leg 0 {} to leg 1 {}\n",
        s(&c.leg0),
        s(&c.leg1)
    );
    assert!(ok("log_repair", &args).contains(&line), "{line}");
    args.push("--dry-run");
    let out = ok("log_repair", &args);
    assert!(
        out.contains(&format!(
            "would copy 0 dirty regions (0 bytes) from leg 0 {} to leg 1 {}\n",
            s(&c.leg0),
            s(&c.leg1)
        )),
        "{out}"
    );
}

/// A backup that cannot be written whole (a full disk; here a file-size limit) is removed,
/// nothing else is written, and the same run succeeds once there is room: the cut-short
/// file took the backup's name and refused every later run.
#[test]
fn a_backup_cut_short_is_removed_and_the_run_can_be_repeated() {
    let c = crash();
    let bak = c.log.parent().unwrap().join("cut.bak");
    let before = contents(&[&c.log, &c.leg0, &c.leg1]);
    let mut args = CRASH_GEOMETRY.to_vec();
    args.extend([
        "--resync",
        "--backup",
        s(&bak),
        "--leg",
        s(&c.leg0),
        "--leg",
        s(&c.leg1),
    ]);
    args.push(s(&c.log));
    let mut cmd = command("log_repair");
    // The legs and the log are written in place, below the limit: only the backup grows.
    limit_file_size(cmd.args(&args), 64 * 1024);
    let o = outcome(&mut cmd);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(!bak.exists(), "the cut-short backup is left");
    for (p, b) in [&c.log, &c.leg0, &c.leg1].iter().zip(&before) {
        assert!(std::fs::read(p).unwrap() == *b, "{} written", p.display());
    }
    ok("log_repair", &args);
    assert!(bak.exists());
}

#[test]
fn repair_memory_is_at_most_the_buffer_it_writes() {
    // A dry run compares the old buffer with the new one a piece at a time; a run that
    // writes holds the one buffer it writes (32 MiB here), nothing more, within the margin.
    let dir = tempfile::tempdir().unwrap();
    let logs = |name: &str| {
        let (small, large) = (
            dir.path().join(name),
            dir.path().join(format!("{name}.large")),
        );
        spread_log(&small, 8192);
        spread_log(&large, LARGE_LOG_REGIONS);
        (small, large)
    };
    let peak = |log: &Path, nr: u64, mode: &[&str], extra: &[&str]| {
        let geometry = two_sector_geometry(nr);
        let mut args = mode.to_vec();
        args.extend(geometry.iter().map(String::as_str));
        args.extend(extra);
        args.push(s(log));
        peak_kib("log_repair", &args)
    };
    let bitmap_kib = LARGE_LOG_REGIONS / 8 / 1024;
    let modes: [&[&str]; 4] = [
        &["--force-resync"],
        &["--rewrite-header"],
        &["--clear-stray-bits"],
        &["--mark-clean", "0..64", "--unsafe-legs-identical"],
    ];
    for mode in modes {
        let (small, large) = logs("dry");
        let small_kib = peak(&small, 8192, mode, &["--dry-run"]);
        let large_kib = peak(&large, LARGE_LOG_REGIONS, mode, &["--dry-run"]);
        assert!(
            large_kib <= small_kib + MEMORY_MARGIN_KIB,
            "{mode:?} --dry-run: {small_kib} KiB, then {large_kib} KiB"
        );
    }
    for (k, mode) in modes.iter().enumerate() {
        let (small, large) = logs(&format!("w{k}"));
        let backup = |log: &Path| format!("{}.bak", log.display());
        let small_kib = peak(&small, 8192, mode, &["--backup", &backup(&small)]);
        let large_kib = peak(
            &large,
            LARGE_LOG_REGIONS,
            mode,
            &["--backup", &backup(&large)],
        );
        assert!(
            large_kib <= small_kib + bitmap_kib + MEMORY_MARGIN_KIB,
            "{mode:?}: {small_kib} KiB, then {large_kib} KiB"
        );
    }
}

#[test]
fn undo_memory_is_at_most_the_buffer_it_writes() {
    // --undo checks the backup against the devices a piece at a time, then holds one buffer
    // (32 MiB here): the current bits, written under the undo's marker, then the log's bytes
    // read from the backup into it and written. A dry run holds none.
    let dir = tempfile::tempdir().unwrap();
    let peak = |nr: u64| {
        let log = dir.path().join(format!("{nr}.img"));
        let backup = dir.path().join(format!("{nr}.bak"));
        spread_log(&log, nr);
        ok(
            "log_repair",
            &["--force-resync", "--backup", s(&backup), s(&log)],
        );
        let dry = peak_kib("log_repair", &["--undo", s(&backup), "--dry-run", s(&log)]);
        let kib = peak_kib("log_repair", &["--undo", s(&backup), s(&log)]);
        let j = dump_json(&log, &[]);
        assert_eq!(
            j["dirty"].as_u64(),
            Some(5 + 105 + 205 + 305 + 405 + 505 + 605 + 705)
        );
        (dry, kib)
    };
    let (small_dry, small_kib) = peak(8192);
    let (large_dry, large_kib) = peak(LARGE_LOG_REGIONS);
    let bitmap_kib = LARGE_LOG_REGIONS / 8 / 1024;
    assert!(
        large_dry <= small_dry + MEMORY_MARGIN_KIB,
        "--dry-run: {small_dry} KiB, then {large_dry} KiB"
    );
    assert!(
        large_kib <= small_kib + bitmap_kib + MEMORY_MARGIN_KIB,
        "{small_kib} KiB, then {large_kib} KiB"
    );
}
