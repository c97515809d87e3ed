//! Helpers shared by the integration tests: kernel fixtures, temporary images, running the
//! binaries.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod lab;
pub mod log;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use era_log_tools::pdata::checksum::{self, BlockKind};
use era_log_tools::pdata::io::BLOCK_SIZE;

/// The folder of the kernel-written fixtures.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernel")
}

/// A fixture image, decompressed.
pub fn fixture(file: &str) -> Vec<u8> {
    let f = std::fs::File::open(fixtures_dir().join(file)).expect("fixture present");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut out)
        .expect("fixture decompresses");
    out
}

/// A fixture's JSON manifest.
pub fn manifest(scenario: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures_dir().join(format!("{scenario}.json")))
        .expect("manifest present");
    serde_json::from_str(&text).expect("manifest parses")
}

/// The first status a kernel-lab manifest recorded for its `create` step.
pub fn create_status(m: &serde_json::Value) -> &serde_json::Value {
    let create = m["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["kind"] == "create")
        .expect("create step");
    &create["status"][0]
}

/// Every era metadata image among the fixtures, by file name.
pub fn era_images() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("era-") && n.ends_with(".img.gz"))
        .collect();
    v.sort();
    v
}

/// Writes `bytes` to a new temporary file.
pub fn temp_image(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), bytes).expect("write temp image");
    f
}

/// What a run of one of the binaries did.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The path of binary `bin` of this crate.
pub fn exe(bin: &str) -> &'static str {
    match bin {
        "era_check" => env!("CARGO_BIN_EXE_era_check"),
        "era_dump" => env!("CARGO_BIN_EXE_era_dump"),
        "era_restore" => env!("CARGO_BIN_EXE_era_restore"),
        "era_repair" => env!("CARGO_BIN_EXE_era_repair"),
        "era_invalidate" => env!("CARGO_BIN_EXE_era_invalidate"),
        "era_metadata_size" => env!("CARGO_BIN_EXE_era_metadata_size"),
        "log_dump" => env!("CARGO_BIN_EXE_log_dump"),
        "log_restore" => env!("CARGO_BIN_EXE_log_restore"),
        "log_repair" => env!("CARGO_BIN_EXE_log_repair"),
        other => panic!("unknown binary {other}"),
    }
}

/// Runs binary `bin` of this crate with `args`.
pub fn run(bin: &str, args: &[&str]) -> Outcome {
    let out = Command::new(exe(bin))
        .args(args)
        .output()
        .expect("binary runs");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A zero-filled temporary file of `len` bytes, e.g. an output for era_restore.
pub fn temp_zeroed(len: u64) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    f.as_file().set_len(len).expect("size temp file");
    f
}

/// The path of a temporary file as a `&str`.
pub fn path_str(f: &tempfile::NamedTempFile) -> &str {
    f.path().to_str().expect("utf-8 temp path")
}

/// The 4096 bytes of block `loc`.
pub fn block(img: &[u8], loc: u64) -> &[u8] {
    let s = loc as usize * BLOCK_SIZE;
    &img[s..s + BLOCK_SIZE]
}

/// The 4096 bytes of block `loc`, writable.
pub fn block_mut(img: &mut [u8], loc: u64) -> &mut [u8] {
    let s = loc as usize * BLOCK_SIZE;
    &mut img[s..s + BLOCK_SIZE]
}

/// Recomputes the checksum of block `loc` as a block of `kind`.
pub fn reseal(img: &mut [u8], loc: u64, kind: BlockKind) {
    checksum::reseal(block_mut(img, loc), kind);
}

pub fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

pub fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

pub fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

pub fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// The seeded generator of the tests: failures replay from their seed.
// Not every test crate that compiles this module uses it.
#[allow(unused_imports)]
pub use era_log_tools::pdata::seeded::SplitMix as Rng;

/// Archived writesets in an image (the writeset tree's entries).
pub fn archived(img: &[u8]) -> u64 {
    use era_log_tools::era::view::View;
    use era_log_tools::pdata::io::MemIo;
    use era_log_tools::pdata::walk::Walker;
    let io = MemIo::from_bytes(img.to_vec());
    let view = View::open(&io, false).expect("readable metadata");
    let mut w = Walker::new(&io, view.limit());
    let top = w.top();
    let n = view
        .writesets(&mut w, top)
        .iter()
        .filter(|ws| !ws.current)
        .count();
    assert!(w.problems().first_fatal().is_none());
    n as u64
}
