//! Helpers shared by the log tool tests.

use std::ops::Range;
use std::path::{Path, PathBuf};

use era_log_tools::log::run::{Mode, RepairOptions};
use serde_json::Value;

// The log tests take these with the rest of this module.
pub use super::fixtures::{fixtures_dir as fixtures, manifest, s, unpack};
pub use super::run::{broken_pipe, command, dev_full, limit_file_size, ok, outcome, run, Outcome};

/// Every log scenario with a manifest.
pub fn log_scenarios() -> Vec<String> {
    super::fixture_names("log-", ".json")
        .into_iter()
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect()
}

/// The log images of every scenario's manifest, by file name.
pub fn kernel_log_images() -> Vec<String> {
    let mut v = Vec::new();
    for scenario in log_scenarios() {
        let m = manifest(&scenario);
        for img in m["images"].as_array().expect("images") {
            if img["disk"] == "log" {
                v.push(img["file"].as_str().expect("file").to_string());
            }
        }
    }
    v
}

/// The kernel's crash log (scenario log-crash) and its two legs, in a folder of their own.
pub struct Crash {
    /// The folder, removed when dropped.
    pub dir: tempfile::TempDir,
    /// The log.
    pub log: PathBuf,
    /// Leg 0.
    pub leg0: PathBuf,
    /// Leg 1.
    pub leg1: PathBuf,
}

/// The crash log and legs, unpacked into a new temporary folder.
pub fn crash() -> Crash {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = unpack("log-crash.log.img.gz", dir.path());
    let leg0 = unpack("log-crash.leg0.img.gz", dir.path());
    let leg1 = unpack("log-crash.leg1.img.gz", dir.path());
    Crash {
        dir,
        log,
        leg0,
        leg1,
    }
}

/// log_dump's JSON report of `log`, with extra arguments.
pub fn dump_json(log: &Path, extra: &[&str]) -> Value {
    let p = log.to_str().expect("path");
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    args.push(p);
    serde_json::from_str(&ok("log_dump", &args)).expect("log_dump JSON")
}

/// The dirty ranges of a log_dump JSON report.
pub fn dirty_ranges(j: &Value) -> Vec<Range<u64>> {
    assert_eq!(j["units"], "regions");
    j["ranges"]
        .as_array()
        .expect("ranges")
        .iter()
        .map(|r| r["begin"].as_u64().expect("begin")..r["end"].as_u64().expect("end"))
        .collect()
}

/// `[[b, e], …]` from a manifest as ranges.
pub fn ranges(v: &Value) -> Vec<Range<u64>> {
    v.as_array()
        .expect("range list")
        .iter()
        .map(|p| p[0].as_u64().expect("begin")..p[1].as_u64().expect("end"))
        .collect()
}

/// Whether every region of `inner` lies in one of `outer`.
pub fn covered(inner: &[Range<u64>], outer: &[Range<u64>]) -> bool {
    inner
        .iter()
        .flat_map(|r| r.clone())
        .all(|x| outer.iter().any(|o| o.contains(&x)))
}

/// Clean bit of region `r`, read straight from a log image: byte 1024 + r/8, bit r%8.
pub fn clean_bit(log: &[u8], r: usize) -> bool {
    log[1024 + r / 8] >> (r % 8) & 1 == 1
}

/// Sets or clears the clean bit of region `r` in a log image.
pub fn set_bit(log: &mut [u8], r: usize, clean: bool) {
    if clean {
        log[1024 + r / 8] |= 1 << (r % 8);
    } else {
        log[1024 + r / 8] &= !(1 << (r % 8));
    }
}

/// The crash mirror's geometry as log_repair takes it: regions of 128 sectors, 65536
/// sectors in all.
pub const CRASH_GEOMETRY: [&str; 4] = ["--region-size", "128", "--length", "65536"];

/// log_repair's arguments for a mirror of the crash geometry: `options` (the mode first),
/// the geometry, each of `legs` after `--leg`, and the log.
pub fn mirror_args<'a>(options: &[&'a str], legs: &[&'a str], log: &'a str) -> Vec<&'a str> {
    let mut args = options.to_vec();
    args.extend(CRASH_GEOMETRY);
    args.extend(legs.iter().flat_map(|l| ["--leg", l]));
    args.push(log);
    args
}

/// log_repair's options for `mode` as its command line leaves them: no region count or
/// geometry given, 512-byte sectors, no dry run, no force, no backup.
pub fn repair_options(mode: Mode<'_>) -> RepairOptions<'_> {
    RepairOptions {
        mode,
        nr_regions: None,
        region_size: None,
        length: None,
        logical_block_size: 512,
        dry_run: false,
        force: false,
        backup: None,
    }
}

/// Regions of the large log of the memory tests: a 32 MiB bitmap, big enough that a copy of
/// it stands out against the few MiB a tool takes anyway.
pub const LARGE_LOG_REGIONS: u64 = 1 << 28;

/// Writes at `path` the buffer (512-byte sectors) of a log of `nr_regions` regions (a
/// multiple of 64), every region clean except the ranges returned: a handful spread over
/// the whole bitmap. Built by hand from the layout of docs/dirty-log-format.md §3, a MiB
/// at a time.
pub fn spread_log(path: &Path, nr_regions: u64) -> Vec<Range<u64>> {
    use std::io::Write;
    let dirty: Vec<Range<u64>> = (0..8)
        .map(|k| {
            let begin = nr_regions / 8 * k + 3 * k;
            begin..begin + 5 + 100 * k
        })
        .collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut head = [0u8; 1024];
    head[0..4].copy_from_slice(&0x4D69_5272u32.to_le_bytes());
    head[4..8].copy_from_slice(&2u32.to_le_bytes());
    head[8..16].copy_from_slice(&nr_regions.to_le_bytes());
    f.write_all(&head).unwrap();
    let bytes = nr_regions / 8;
    let step = 1 << 20;
    for first in (0..bytes).step_by(step as usize) {
        let mut chunk = vec![0xFFu8; step.min(bytes - first) as usize];
        for r in dirty.iter().flat_map(|d| d.clone()) {
            if (first * 8..(first + chunk.len() as u64) * 8).contains(&r) {
                let i = (r / 8 - first) as usize;
                chunk[i] &= !(1 << (r % 8));
            }
        }
        f.write_all(&chunk).unwrap();
    }
    let padding = (1024 + bytes).next_multiple_of(512) - 1024 - bytes;
    f.write_all(&vec![0; padding as usize]).unwrap();
    f.flush().unwrap();
    dirty
}

/// What a tool may take beyond its memory on a small log when it reads the large one: 16
/// MiB, half the large log's bitmap. Reading in pieces takes a piece buffer or two of 4 MiB
/// and the allocator keeps some slack; one more copy of the bitmap (32 MiB) goes beyond it.
pub const MEMORY_MARGIN_KIB: u64 = 16 * 1024;

/// The geometry of a mirror of `nr_regions` regions of 2 sectors, as the tools take it.
pub fn two_sector_geometry(nr_regions: u64) -> [String; 4] {
    [
        "--region-size".into(),
        "2".into(),
        "--length".into(),
        (nr_regions * 2).to_string(),
    ]
}
