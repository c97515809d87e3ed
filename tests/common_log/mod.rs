//! Helpers shared by the log tool tests: kernel fixtures and running the binaries.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The directory of the kernel-lab fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernel")
}

/// Decompresses fixture `name` (a `.img.gz`) into `dir`, returning the image path.
pub fn unpack(name: &str, dir: &Path) -> PathBuf {
    let gz = File::open(fixtures().join(name)).expect("fixture");
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut data)
        .expect("gunzip");
    let out = dir.join(name.trim_end_matches(".gz"));
    std::fs::write(&out, data).expect("write image");
    out
}

/// The manifest of scenario `name` (e.g. "log-crash").
pub fn manifest(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.json"))).expect("manifest");
    serde_json::from_str(&text).expect("manifest JSON")
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
    let exe = match bin {
        "log_dump" => env!("CARGO_BIN_EXE_log_dump"),
        "log_restore" => env!("CARGO_BIN_EXE_log_restore"),
        "log_repair" => env!("CARGO_BIN_EXE_log_repair"),
        other => panic!("unknown binary {other}"),
    };
    Command::new(exe).args(args).output().expect("run binary")
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
    j["dirty_ranges"]
        .as_array()
        .expect("dirty_ranges")
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
