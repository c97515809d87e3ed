//! dm-cache metadata as the suite's other tools meet it: the writers refuse to write over
//! it and name it, the readers say what they were given. Block 0 of kernel-written cache
//! metadata carries the magic 06142003 (octal); before the cache format was one of the
//! suite's, it was "data that is neither zeros nor a signature we know".

mod common;

use std::path::Path;

use common::{contents, fixture, run, s};

const CACHE: &str = "cache-fixtures.meta2.img.gz";

/// `tool args` exits 1 and says each of `words`; `target` is left as it was.
fn refused(target: &Path, tool: &str, args: &[&str], words: &[&str]) {
    let before = contents(&[target]);
    let r = run(tool, args);
    for w in words {
        r.assert_error_of(&format!("{tool} {args:?}:"), w);
    }
    assert!(contents(&[target]) == before, "{tool} {args:?} wrote");
}

#[test]
fn writers_refuse_cache_metadata_and_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cache = put("cache.img", &fixture(CACHE));
    let era = put("era.img", &fixture("era-basic.meta.img.gz"));
    let log = put("log.img", &fixture("log-crash.log.img.gz"));
    let (era_xml, log_xml) = (dir.path().join("era.xml"), dir.path().join("log.xml"));
    assert_eq!(run("era_dump", &["-o", s(&era_xml), s(&era)]).code, 0);
    assert_eq!(run("log_dump", &["-o", s(&log_xml), s(&log)]).code, 0);
    let holds = "holds dm-cache metadata";
    let cases: [(&str, Vec<&str>); 4] = [
        ("era_restore", vec!["-i", s(&era_xml), "-o", s(&cache)]),
        ("era_repair", vec!["-i", s(&era), "-o", s(&cache)]),
        ("log_restore", vec!["-i", s(&log_xml), "-o", s(&cache)]),
        ("log_repair", vec!["--force-resync", s(&cache)]),
    ];
    for (tool, args) in &cases {
        refused(&cache, tool, args, &[holds, "--force"]);
    }
}

#[test]
fn readers_say_it_is_cache_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.img");
    std::fs::write(&cache, fixture(CACHE)).unwrap();
    let told = "this is dm-cache metadata, not ";
    let use_ = "; use cache_dump (thin-provisioning-tools)";
    refused(
        &cache,
        "era_check",
        &[s(&cache)],
        &[told, "dm-era metadata", use_],
    );
    refused(
        &cache,
        "log_dump",
        &[s(&cache)],
        &[told, "a disk log", use_],
    );
}
