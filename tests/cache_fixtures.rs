//! The cache reader against dm-cache metadata the kernel wrote (tests/kernel-lab/
//! cache-fixtures.sh): for every image, the cache's geometry and its counts of cached and
//! dirty blocks are the ones `dmsetup status` reported when the image was taken, and the
//! origin blocks cached are the ones the scenario wrote. The images are of each version:
//! taken live (after a status, which commits), suspended with every cached block dirty,
//! and after the remove with some written back.

mod common;

use std::collections::BTreeSet;

use common::{fixture, manifest};
use era_log_tools::pdata::io::MemIo;
use era_log_tools::{CacheMetadata, Mapping};
use serde_json::Value;

/// The scenario's runs: on the lab's default kernel (6.1), and in a folder of its own on
/// 6.12 (`KLAB_KERNEL_PKG=linux-image-6.12.100+deb12-amd64`), each with the kernel release
/// its manifest must name.
const RUNS: [(&str, &str); 2] = [("", "6.1."), ("6.12/", "6.12.")];
const SCENARIO: &str = "cache-fixtures";

/// What `dmsetup status` said of a cache.
#[derive(Debug)]
struct Status {
    block_size: u32,
    mapped: u64,
    cache_blocks: u32,
    dirty: u64,
}

/// `0 <len> cache <md bs> <used>/<total> <bs> <mapped>/<cblocks> <rh> <rm> <wh> <wm>
/// <demotions> <promotions> <dirty> …`
fn parse_status(line: &str) -> Status {
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[2], "cache", "{line}");
    let (mapped, cache_blocks) = f[6].split_once('/').expect("mapped/total");
    Status {
        block_size: f[5].parse().expect("block size"),
        mapped: mapped.parse().expect("mapped"),
        cache_blocks: cache_blocks.parse().expect("cache blocks"),
        dirty: f[13].parse().expect("dirty"),
    }
}

/// The last status line of cache `dm_name` recorded at step `upto` or before.
fn status_at(m: &Value, dm_name: &str, upto: u64) -> Status {
    let mut last = None;
    for step in m["steps"].as_array().expect("steps") {
        if step["seq"].as_u64().expect("seq") > upto {
            break;
        }
        for s in step["status"].as_array().into_iter().flatten() {
            if s["dm_name"] == dm_name {
                last = s["line"].as_str().map(str::to_owned);
            }
        }
    }
    parse_status(&last.expect("a status of the cache"))
}

/// The origin blocks the scenario wrote to cache `dm_name` up to step `upto`, and those
/// written since its last wait for the cache to be clean.
fn written(m: &Value, dm_name: &str, upto: u64) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let (mut all, mut since_clean) = (BTreeSet::new(), BTreeSet::new());
    let target = format!("of=/dev/mapper/{dm_name} ");
    let mut ours = false;
    for step in m["steps"].as_array().expect("steps") {
        if step["seq"].as_u64().expect("seq") > upto {
            break;
        }
        let cmd = step["command"].as_str().unwrap_or("");
        if step["kind"] == "create" {
            ours = cmd.contains(&format!("create {dm_name} "));
        }
        if !ours {
            continue;
        }
        if step["kind"] == "wait" && cmd.contains("0 dirty blocks") {
            since_clean.clear();
        }
        if step["kind"] == "write" && cmd.contains(&target) {
            let arg = |name: &str| -> u64 {
                let v = cmd.split(&format!(" {name}=")).nth(1).expect(name);
                v.split(' ').next().unwrap().parse().expect(name)
            };
            let (seek, count) = (arg("seek"), arg("count"));
            all.extend(seek..seek + count);
            since_clean.extend(seek..seek + count);
        }
    }
    (all, since_clean)
}

/// Every image of a metadata disk with the cache that wrote it, its version, and the
/// step it was taken after (the end for the image saved after the run).
fn images(m: &Value, folder: &str) -> Vec<(String, &'static str, u32, u64)> {
    let last = m["steps"].as_array().expect("steps").len() as u64;
    m["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| {
            let (cache, version) = match i["disk"].as_str() {
                Some("meta1") => ("c1", 1),
                Some("meta2") => ("c2", 2),
                other => panic!("image of {other:?}"),
            };
            let step = i["after_step"].as_u64().unwrap_or(last);
            let file = format!("{folder}{}", i["file"].as_str().expect("file"));
            (file, cache, version, step)
        })
        .collect()
}

fn read(file: &str) -> (CacheMetadata, Vec<Mapping>) {
    let md = CacheMetadata::from_io(Box::new(MemIo::from_bytes(fixture(file))))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let all = md
        .mappings()
        .and_then(|ms| ms.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    (md, all)
}

#[test]
fn the_reader_agrees_with_what_the_kernel_reported() {
    for (folder, release) in RUNS {
        agrees(folder, release);
    }
}

/// The images of the run in `folder` against its manifest, written by kernel `release`.
fn agrees(folder: &str, release: &str) {
    let m = manifest(&format!("{folder}{SCENARIO}"));
    let kernel = m["kernel"]["release"].as_str().expect("kernel release");
    assert!(kernel.starts_with(release), "{folder}: {kernel}");
    let imgs = images(&m, folder);
    assert_eq!(
        imgs.len(),
        6,
        "a live, a dirty and a final image of each version"
    );
    let mut live = 0;
    for (file, cache, version, step) in imgs {
        let status = status_at(&m, cache, step);
        let (md, all) = read(&file);
        let sb = md.superblock();
        assert_eq!(sb.version, version, "{file}");
        assert_eq!(sb.data_block_size, status.block_size, "{file}");
        assert_eq!(sb.cache_blocks, status.cache_blocks, "{file}");
        assert_eq!(all.len() as u64, status.mapped, "{file}: cached blocks");
        let (written, since_clean) = written(&m, cache, step);
        let cached: BTreeSet<u64> = all.iter().map(|m| m.oblock).collect();
        assert_eq!(
            cached, written,
            "{file}: whole-block writes are cached at once"
        );
        let dirty: BTreeSet<u64> = all.iter().filter(|m| m.dirty).map(|m| m.oblock).collect();
        assert_eq!(dirty.len() as u64, status.dirty, "{file}: dirty blocks");
        assert_eq!(
            dirty, since_clean,
            "{file}: dirty since the last write-back"
        );
        if !sb.clean_shutdown() {
            // Opened by the kernel and not suspended since: the recorded flags are those of
            // the format (none), and the kernel would take every mapped block as dirty.
            live += 1;
            assert!(all.iter().all(|m| m.dirty && !m.recorded_dirty), "{file}");
        }
        assert!(all.windows(2).all(|w| w[0].cblock < w[1].cblock), "{file}");
    }
    assert_eq!(live, 2, "the live images are not shut down cleanly");
}
