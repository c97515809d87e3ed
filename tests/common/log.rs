//! Helpers shared by the log tool tests.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

// Not every test crate that compiles this module uses these.
#[allow(unused_imports)]
pub use super::{fixtures_dir as fixtures, manifest};

/// Decompresses fixture `name` (a `.img.gz`) into `dir`, returning the image path.
pub fn unpack(name: &str, dir: &Path) -> PathBuf {
    let out = dir.join(name.trim_end_matches(".gz"));
    std::fs::write(&out, super::fixture(name)).expect("write image");
    out
}

/// Every log scenario with a manifest.
pub fn log_scenarios() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("log-") && n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect();
    v.sort();
    v
}

/// Runs one of the crate's binaries.
pub fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(super::exe(bin))
        .args(args)
        .output()
        .expect("run binary")
}

/// Stdout of a run that must succeed.
pub fn ok(bin: &str, args: &[&str]) -> String {
    let o = run(bin, args);
    assert!(
        o.status.success(),
        "{bin} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
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

/// Exit code of a run.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
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
