//! log_repair on the kernel's crash image and its two legs, on the other kernel images,
//! and on hostile logs.

mod common;

use std::path::{Path, PathBuf};

use common::log::*;

const REGION_BYTES: usize = 128 * 512;

/// Clean bit of region `r`, read straight from the image: byte 1024 + r/8, bit r%8.
fn clean_bit(log: &[u8], r: usize) -> bool {
    log[1024 + r / 8] >> (r % 8) & 1 == 1
}

struct Crash {
    _dir: tempfile::TempDir,
    log: PathBuf,
    leg0: PathBuf,
    leg1: PathBuf,
}

fn crash() -> Crash {
    let dir = tempfile::tempdir().unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let leg0 = unpack("log-crash.leg0.img.gz", dir.path());
    let leg1 = unpack("log-crash.leg1.img.gz", dir.path());
    Crash {
        _dir: dir,
        log,
        leg0,
        leg1,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

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
    assert_eq!(std::fs::read(&backup).unwrap(), &log0[..1536]);
    // Nothing is left to do.
    let out = ok(
        "log_repair",
        &[
            "--resync",
            "--region-size",
            "128",
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
    let args = [
        "--verify",
        "--region-size",
        "128",
        "--leg",
        s(&c.leg0),
        "--leg",
        s(&c.leg1),
    ];
    let mut dry = args.to_vec();
    dry.extend(["--dry-run", s(&c.log)]);
    let out = ok("log_repair", &dry);
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
    let mut run_args = args.to_vec();
    run_args.push(s(&c.log));
    let out = ok("log_repair", &run_args);
    assert!(out.contains(&format!("{d}..{}", d + 1)), "{out}");
    let j = dump_json(&c.log, &[]);
    assert_eq!(dirty_ranges(&j), vec![d as u64..d as u64 + 1]);
    assert_eq!(std::fs::read(&c.leg0).unwrap(), leg0);
    assert_eq!(std::fs::read(&c.leg1).unwrap(), leg1, "verify wrote a leg");
}

#[test]
fn dry_run_resync_writes_nothing() {
    let c = crash();
    let before: Vec<Vec<u8>> = [&c.log, &c.leg0, &c.leg1]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut leg1 = before[2].clone();
    flip(&mut leg1, 48 * REGION_BYTES);
    std::fs::write(&c.leg1, &leg1).unwrap();
    let out = ok(
        "log_repair",
        &[
            "--resync",
            "--dry-run",
            "--region-size",
            "128",
            "--leg",
            s(&c.leg0),
            "--leg",
            s(&c.leg1),
            s(&c.log),
        ],
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
        &[
            "--resync",
            "--region-size",
            "128",
            "--leg",
            s(&c.leg0),
            "--leg",
            s(&short),
            s(&c.log),
        ],
    );
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("leg 0: 65536 sectors, leg 1: 2048 sectors") && err.contains("--length"),
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
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "the log has 512 regions, but 131072 sectors (from --length) in regions of \
                      128 sectors make 1024; the region size is likely 256"
        ),
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
            "--leg",
            s(&c.leg0),
            "--leg",
            s(&c.log),
            s(&c.log),
        ],
    );
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("leg 1: ") && err.contains("is the log itself"),
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
    assert_eq!(code(&o), 2);
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
                vec!["--mark-clean", "0..4", "--unsafe-legs-identical"],
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
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(code(&o), 1, "{bin} {args:?}: {err}");
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
    assert_eq!(code(&o), 1);
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
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("version 1"));
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
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
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
fn mark_clean_needs_the_unsafe_flag() {
    let dir = tempfile::tempdir().unwrap();
    let p = unpack("log-crash.log.img.gz", dir.path());
    let before = std::fs::read(&p).unwrap();
    let o = run("log_repair", &["--mark-clean", "48..50", s(&p)]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--unsafe-legs-identical"), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
    let o = run(
        "log_repair",
        &["--mark-clean", "500..513", "--unsafe-legs-identical", s(&p)],
    );
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("500..513") && err.contains("512"), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
    ok(
        "log_repair",
        &[
            "--mark-clean",
            "48..50,60",
            "--unsafe-legs-identical",
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
    assert_eq!(code(&o), 1);
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
        &[
            "--resync",
            "--region-size",
            "128",
            "--leg",
            s(&c.leg0),
            "--leg",
            s(&c.leg1),
            "--backup",
            s(&bak),
            s(&c.log),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("creating the backup"), "{err}");
    assert_eq!(std::fs::read(&c.leg1).unwrap(), leg1, "a leg was written");
    assert_eq!(std::fs::read(&c.log).unwrap(), log0);
}
