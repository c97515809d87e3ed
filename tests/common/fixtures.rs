//! The kernel-written fixtures, temporary files and the paths the tools are given.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The folder of the crate: the scripts, docs and examples the tests read.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The folder of the kernel-written fixtures.
pub fn fixtures_dir() -> PathBuf {
    root().join("tests/fixtures/kernel")
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

/// The first entry of the manifest's list `list` whose `key` is `value`.
pub fn entry<'a, V>(list: &'a serde_json::Value, key: &str, value: V) -> &'a serde_json::Value
where
    V: std::fmt::Display,
    serde_json::Value: PartialEq<V>,
{
    list.as_array()
        .expect("a list")
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no entry whose {key} is {value}"))
}

/// The first status a kernel-lab manifest recorded for its `create` step.
pub fn create_status(m: &serde_json::Value) -> &serde_json::Value {
    &entry(&m["steps"], "kind", "create")["status"][0]
}

/// The fixture files whose names start with `prefix` and end with `suffix`, sorted.
pub fn fixture_names(prefix: &str, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Every era metadata image among the fixtures, by file name.
pub fn era_images() -> Vec<String> {
    fixture_names("era-", ".img.gz")
}

/// Decompresses fixture `name` (a `.img.gz`) into `dir`, returning the image path.
pub fn unpack(name: &str, dir: &Path) -> PathBuf {
    let out = dir.join(name.trim_end_matches(".gz"));
    std::fs::write(&out, fixture(name)).expect("write image");
    out
}

/// Writes `bytes` to a new temporary file.
pub fn temp_image(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), bytes).expect("write temp image");
    f
}

/// The metadata of fixture era-basic with one bit flipped in byte `at` of its era array's
/// root (the superblock's field at byte 208), which fails that block's checksum, in a
/// temporary file.
pub fn era_basic_with_bad_era_array(at: usize) -> tempfile::NamedTempFile {
    let mut img = fixture("era-basic.meta.img.gz");
    let root = super::le64(super::block(&img, 0), 208);
    super::block_mut(&mut img, root)[at] ^= 1;
    temp_image(&img)
}

/// A zero-filled temporary file of `len` bytes, e.g. an output for era_restore.
pub fn temp_zeroed(len: u64) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    f.as_file().set_len(len).expect("size temp file");
    f
}

/// The path of a temporary file as a `&str`.
pub fn path_str(f: &tempfile::NamedTempFile) -> &str {
    s(f.path())
}

/// A path as the `&str` a tool's argument list takes.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The files' contents, to compare before and after a run.
pub fn contents<P: AsRef<Path>>(paths: &[P]) -> Vec<Vec<u8>> {
    paths
        .iter()
        .map(|p| std::fs::read(p.as_ref()).expect("file readable"))
        .collect()
}
