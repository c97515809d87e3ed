//! era_invalidate against the kernel's ground truth: the manifests record which blocks were
//! written in which era, and which were in flight at a crash.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeMap;

use common::*;
use era_log_tools::era::format::superblock::Superblock;
use era_log_tools::era::invalidate::{written_since, WrittenBlocks};
use era_log_tools::era::view::View;
use era_log_tools::pdata::io::MemIo;
use serde_json::Value;

/// The origin's block count when the image captured after `after_step` was taken (the
/// final one for a final image).
fn nr_blocks_at(m: &Value, after_step: Option<u64>) -> usize {
    let Some(history) = m["ground_truth"]["nr_blocks_history"].as_array() else {
        return m["era"]["nr_blocks"].as_u64().expect("nr_blocks") as usize;
    };
    history
        .iter()
        .rev()
        .find(|t| after_step.map_or(true, |s| t["step"].as_u64().unwrap() <= s))
        .expect("a table before the capture")["nr_blocks"]
        .as_u64()
        .unwrap() as usize
}

/// Whether a write at `step` to `block` was cut off by a shrink loaded after it and before
/// the capture: the kernel truncates the era array, so such a block loses its history.
fn cut_off(m: &Value, step: Option<u64>, block: u64, after_step: Option<u64>) -> bool {
    let Some(history) = m["ground_truth"]["nr_blocks_history"].as_array() else {
        return false;
    };
    history.iter().any(|t| {
        let at = t["step"].as_u64().unwrap();
        step.is_some_and(|s| at > s)
            && after_step.map_or(true, |s| at <= s)
            && t["nr_blocks"].as_u64().unwrap() <= block
    })
}

/// The newest era in which each block was written, from a scenario's acknowledged writes up
/// to `after_step` (all of them for a final image), starting from the history of the image
/// the scenario's metadata disk started from.
fn last_written(scenario: &str, after_step: Option<u64>, max_era: Option<u64>) -> Vec<u64> {
    let m = manifest(scenario);
    let nr_blocks = nr_blocks_at(&m, after_step);
    let mut last = vec![0u64; nr_blocks];
    let meta = entry(&m["disks"], "name", "meta");
    if let Some(from) = meta["initial_content"]["from_host_file"].as_str() {
        let earlier = from.split('.').next().expect("scenario name");
        for (b, e) in last_written(earlier, None, max_era).into_iter().enumerate() {
            if b < nr_blocks {
                last[b] = e;
            }
        }
    }
    for w in m["writes"].as_array().expect("writes") {
        let step = w["step"].as_u64();
        let included = match (after_step, step) {
            (None, _) => true,
            (Some(limit), Some(step)) => step <= limit,
            (Some(_), None) => false,
        };
        let era = w["era"].as_u64().expect("era");
        if !included || max_era.is_some_and(|m| era > m) {
            continue;
        }
        let (b, e) = (
            w["blocks"][0].as_u64().unwrap(),
            w["blocks"][1].as_u64().unwrap(),
        );
        for blk in b..e {
            if (blk as usize) < nr_blocks && !cut_off(&m, step, blk, after_step) {
                last[blk as usize] = last[blk as usize].max(era);
            }
        }
    }
    last
}

fn listed(set: &WrittenBlocks) -> Vec<u64> {
    set.runs().flat_map(|(b, e)| b..e).collect()
}

fn since(last: &[u64], n: u64) -> Vec<u64> {
    (0..last.len() as u64)
        .filter(|&b| last[b as usize] >= n)
        .collect()
}

fn ranges_to_blocks(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("ranges")
        .iter()
        .flat_map(|r| r[0].as_u64().unwrap()..r[1].as_u64().unwrap())
        .collect()
}

/// The snapshot event held when the image was captured, if any.
fn held_snapshot(m: &Value, after_step: Option<u64>) -> Option<Value> {
    let ms = &m["ground_truth"]["metadata_snapshot"];
    let events = ms["events"].as_array()?;
    let mut held = None;
    for e in events {
        let step = e["step"].as_u64().expect("event step");
        if after_step.is_some_and(|s| step > s) {
            break;
        }
        held = (e["what"] == "taken").then(|| e.clone());
    }
    if after_step.is_none() && ms["held_at_end"] != true {
        return None;
    }
    held
}

struct Case {
    scenario: String,
    file: String,
    after_step: Option<u64>,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for file in era_images() {
        let scenario = file.split('.').next().unwrap().to_owned();
        let m = manifest(&scenario);
        let img = entry(&m["images"], "file", file.as_str()).clone();
        out.push(Case {
            scenario,
            file,
            after_step: img["after_step"].as_u64(),
        });
    }
    out
}

#[test]
fn live_view_equals_the_ground_truth_for_every_era() {
    let mut checked = 0;
    for c in cases() {
        let m = manifest(&c.scenario);
        let img = fixture(&c.file);
        let io = MemIo::from_bytes(img);
        let view = View::open(&io, false).unwrap();
        let last = last_written(&c.scenario, c.after_step, None);
        assert_eq!(view.nr_blocks(), last.len() as u64, "{}", c.file);
        let crash = &m["ground_truth"]["crash"];
        let mut in_flight: Vec<(u64, u64)> = Vec::new();
        if !crash.is_null() && c.after_step.is_none() {
            for w in crash["in_flight_writes"].as_array().unwrap() {
                let era = w["era"].as_u64().unwrap();
                for b in w["blocks"][0].as_u64().unwrap()..w["blocks"][1].as_u64().unwrap() {
                    in_flight.push((b, era));
                }
            }
        }
        for n in 1..=view.current_era() as u64 + 1 {
            let got = listed(&written_since(&io, &view, n as u32).unwrap());
            let want = since(&last, n);
            let own_history = m["disks"][0]["initial_content"].is_null();
            if let (None, true, Some(table)) = (
                c.after_step,
                own_history && crash.is_null(),
                m["ground_truth"]["written_since"].get(n.to_string()),
            ) {
                assert_eq!(
                    want,
                    ranges_to_blocks(table),
                    "{}: our truth vs the lab's",
                    c.file
                );
            }
            if in_flight.is_empty() {
                assert_eq!(got, want, "{} --written-since {n}", c.file);
            } else {
                let missing: Vec<_> = want.iter().filter(|b| !got.contains(b)).collect();
                assert!(
                    missing.is_empty(),
                    "{} since {n}: missing {missing:?}",
                    c.file
                );
                let extra: Vec<_> = got
                    .iter()
                    .filter(|b| !want.contains(b))
                    .filter(|b| !in_flight.iter().any(|&(f, e)| f == **b && e >= n))
                    .collect();
                assert!(extra.is_empty(), "{} since {n}: extra {extra:?}", c.file);
            }
            checked += 1;
        }
        let all = written_since(&io, &view, 0).unwrap();
        assert_eq!(all.runs().collect::<Vec<_>>(), vec![(0, last.len() as u64)]);
        let above = written_since(&io, &view, view.current_era() + 1).unwrap();
        assert_eq!(above.runs().count(), 0, "{}", c.file);
    }
    assert!(checked > 500, "{checked}");
}

#[test]
fn crash_image_lists_every_acknowledged_write_of_the_current_era() {
    let m = manifest("era-crash");
    let io = MemIo::from_bytes(fixture("era-crash.meta.img.gz"));
    let view = View::open(&io, false).unwrap();
    let era = view.current_era();
    assert_ne!(
        view.sb.current_writeset.root, 0,
        "the crash left a live current writeset"
    );
    let acknowledged: Vec<u64> = m["writes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["era"].as_u64() == Some(era as u64))
        .flat_map(|w| w["blocks"][0].as_u64().unwrap()..w["blocks"][1].as_u64().unwrap())
        .collect();
    assert!(!acknowledged.is_empty());
    let set = written_since(&io, &view, era).unwrap();
    for b in acknowledged {
        assert!(set.contains(b), "block {b} of era {era} missing");
    }
}

#[test]
fn snapshot_view_equals_snapshot_written_since() {
    let mut held_images = 0;
    for c in cases() {
        let m = manifest(&c.scenario);
        let io = MemIo::from_bytes(fixture(&c.file));
        let Some(event) = held_snapshot(&m, c.after_step) else {
            let err = View::open(&io, true).unwrap_err();
            assert!(
                err.to_string().contains("no current metadata snap"),
                "{}",
                c.file
            );
            continue;
        };
        held_images += 1;
        let view = View::open(&io, true).unwrap();
        assert_eq!(view.sb.blocknr, event["held_root_after"].as_u64().unwrap());
        let covers = event["snapshot_covers_eras_up_to"].as_u64().unwrap();
        let last = last_written(&c.scenario, c.after_step, Some(covers));
        let table: BTreeMap<u64, Vec<u64>> = event["snapshot_written_since"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), ranges_to_blocks(v)))
            .collect();
        assert!(!table.is_empty());
        for n in 1..=covers + 2 {
            let got = listed(&written_since(&io, &view, n as u32).unwrap());
            let want = table.get(&n).cloned().unwrap_or_else(|| since(&last, n));
            assert_eq!(
                got, want,
                "{} --metadata-snapshot --written-since {n}",
                c.file
            );
            assert_eq!(
                got,
                since(&last, n),
                "manifest table agrees with its writes"
            );
        }
    }
    assert!(held_images >= 3, "{held_images}");
}

#[test]
fn binary_xml_matches_the_peer_format() {
    let f = temp_image(&fixture("era-basic.meta.img.gz"));
    let path = f.path().to_str().unwrap();
    let out = run("era_invalidate", &["--written-since", "3", path]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "<blocks>\n  <block block=\"0\"/>\n  <block block=\"100\"/>\n  <block block=\"300\"/>\n  <range begin=\"1008\" end=\"1024\"/>\n</blocks>\n"
    );
    let out = run("era_invalidate", &["--written-since", "5", path]);
    assert_eq!(out.stdout, "<blocks>\n</blocks>\n");
    let out = run("era_invalidate", &["--written-since", "0", path]);
    assert_eq!(
        out.stdout,
        "<blocks>\n  <range begin=\"0\" end=\"1024\"/>\n</blocks>\n"
    );
}

#[test]
fn binary_text_and_json_in_sectors_and_bytes() {
    let f = temp_image(&fixture("era-basic.meta.img.gz"));
    let path = f.path().to_str().unwrap();
    let out = run(
        "era_invalidate",
        &[
            "--written-since",
            "4",
            "--format",
            "text",
            "--units",
            "sectors",
            path,
        ],
    );
    assert_eq!(out.stdout, "12800 12928\n38400 38528\n");
    let out = run(
        "era_invalidate",
        &[
            "--written-since",
            "4",
            "--format",
            "json",
            "--units",
            "bytes",
            path,
        ],
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["ranges"][0]["begin"], 100 * 65536);
    assert_eq!(v["ranges"][1]["end"], 301 * 65536);
    assert_eq!(v["block_size_sectors"], 128);
    let out = run(
        "era_invalidate",
        &["--written-since", "4", "--units", "bytes", path],
    );
    assert_eq!(out.code, 2, "units need text or json");
}

#[test]
fn binary_snapshot_mode_and_errors() {
    let f = temp_image(&fixture("era-snap-held.removed-snap-held.img.gz"));
    let path = f.path().to_str().unwrap();
    let out = run(
        "era_invalidate",
        &["--metadata-snapshot", "--written-since", "2", path],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "<blocks>\n  <range begin=\"64\" end=\"96\"/>\n</blocks>\n"
    );
    let g = temp_image(&fixture("era-basic.meta.img.gz"));
    let out = run(
        "era_invalidate",
        &[
            "--metadata-snapshot",
            "--written-since",
            "1",
            g.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no current metadata snap"),
        "{}",
        out.stderr
    );
    assert_eq!(
        run("era_invalidate", &["--written-since", "-1", path]).code,
        2
    );
    assert_eq!(run("era_invalidate", &[path]).code, 2);
}

#[test]
fn damaged_metadata_is_an_error_not_a_short_list() {
    let f = era_basic_with_bad_era_array(200);
    let out = run(
        "era_invalidate",
        &["--written-since", "1", f.path().to_str().unwrap()],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("era array, node at block"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

/// On the largest kernel images (2 million and 262144 blocks, lists of several pieces), the
/// tool prints the library's answer in every format and unit asked for.
#[test]
fn the_tool_prints_the_answer_in_the_format_asked() {
    use era_log_tools::era::invalidate::listing::{write, Format, Offline, Units};
    for name in ["era-large.meta.img.gz", "era-many-eras.meta.img.gz"] {
        let bytes = fixture(name);
        let io = MemIo::from_bytes(bytes.clone());
        let view = View::open(&io, false).unwrap();
        let f = temp_image(&bytes);
        let path = f.path().to_str().unwrap();
        for since in [
            1,
            2,
            view.sb.current_era.saturating_sub(1),
            view.sb.current_era,
        ] {
            let set = written_since(&io, &view, since).unwrap();
            let read = Offline {
                since,
                block_size: view.sb.data_block_size,
                era: view.block0.current_era,
                snapshot_era: None,
            };
            for (format, units, args) in [
                (Format::Xml, Units::Blocks, vec![]),
                (
                    Format::Text,
                    Units::Sectors,
                    vec!["--format", "text", "--units", "sectors"],
                ),
                (
                    Format::Json,
                    Units::Bytes,
                    vec!["--format", "json", "--units", "bytes"],
                ),
            ] {
                let mut want = Vec::new();
                write(&mut want, &set, format, units, &read).unwrap();
                let since_s = since.to_string();
                let mut all = vec!["--written-since", since_s.as_str()];
                all.extend(&args);
                all.push(path);
                let out = run("era_invalidate", &all);
                assert_eq!(out.code, 0, "{name} {all:?}: {}", out.stderr);
                assert!(
                    out.stdout.as_bytes() == want.as_slice(),
                    "{name} {all:?}: the tool's list differs from the answer's"
                );
            }
            assert!(
                set.runs().count() > 0 || since == view.sb.current_era,
                "{name} since {since}"
            );
        }
    }
}

/// An era past the metadata's current era lists nothing (as thin-provisioning-tools does),
/// but says so on stderr and in JSON: a backup whose saved era is ahead of the metadata
/// would otherwise copy nothing, forever, in silence.
#[test]
fn an_era_past_the_current_one_is_said() {
    let bytes = fixture("era-basic.meta.img.gz");
    let current = Superblock::unpack(block(&bytes, 0)).current_era;
    let f = temp_image(&bytes);
    let path = f.path().to_str().unwrap();
    let ahead = (current + 1).to_string();
    let out = run("era_invalidate", &["--written-since", &ahead, path]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "<blocks>\n</blocks>\n");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("era_invalidate: {path}: warning: "))
            && out.stderr.contains(&format!("current era is {current}")),
        "{}",
        out.stderr
    );
    let out = run(
        "era_invalidate",
        &["--written-since", &ahead, "--format", "json", "-q", path],
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["past_current_era"].as_bool(), out.stderr.as_str()),
        (Some(true), "")
    );
    // The current era itself is no mistake.
    let now = current.to_string();
    let out = run(
        "era_invalidate",
        &["--written-since", &now, "--format", "json", path],
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["past_current_era"].as_bool(), out.stderr.as_str()),
        (Some(false), "")
    );
}

/// era_invalidate writes the list as it reads the metadata, a window of blocks at a time, in
/// every format: its memory does not grow with the origin (holding a bit per block, it took
/// 6 MiB more at 5·10^7 blocks than at 5·10^6).
#[test]
fn memory_does_not_grow_with_the_origin() {
    let small = synthetic::era_metadata(5_000_000, 2);
    let large = synthetic::era_metadata(50_000_000, 2);
    // Every block is listed but every thousandth.
    let out = outcome(command("era_invalidate").args([
        "--written-since",
        "1",
        "--format",
        "text",
        path_str(&small),
    ]));
    assert!(out.stdout.starts_with("1 1000\n1001 2000\n"), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 5000);
    for format in ["xml", "text", "json"] {
        let peak = |img| {
            let args = [
                "--written-since",
                "1",
                "--format",
                format,
                "-o",
                "/dev/null",
            ];
            peak_kib("era_invalidate", &[&args[..], &[path_str(img)]].concat())
        };
        let (s, l) = (peak(&small), peak(&large));
        assert!(
            l < s + 2048,
            "{format}: {s} KiB at 5·10^6 blocks, {l} KiB at 5·10^7"
        );
    }
}

/// A `BEGIN END` line.
fn pair(l: &str) -> (u64, u64) {
    let (b, e) = l.split_once(' ').unwrap();
    (b.parse().unwrap(), e.parse().unwrap())
}

/// What was written since era 1 in the era metadata `era`, in sectors, as era_invalidate
/// lists it without a cache.
fn written_sectors(era: &str) -> Vec<(u64, u64)> {
    let args = [
        "--written-since",
        "1",
        "--format",
        "text",
        "--units",
        "sectors",
        era,
    ];
    let origin = run("era_invalidate", &args);
    assert!(origin.success(), "{origin:?}");
    origin.stdout.lines().map(pair).collect()
}

/// The cache blocks any written sector falls in, found one by one from the cache reader's
/// mapping (checked against the kernel's status in cache_fixtures); `written` in sectors.
fn cache_blocks_holding(cache: &str, written: &[(u64, u64)]) -> Vec<u64> {
    let md = era_log_tools::CacheMetadata::open(cache).unwrap();
    let size = u64::from(md.superblock().data_block_size);
    let mut want = Vec::new();
    for m in md.mappings().unwrap() {
        let m = m.unwrap();
        let (s, e) = (m.oblock * size, (m.oblock + 1) * size);
        if written.iter().any(|&(b, x)| b < e && s < x) {
            want.push(m.cblock);
        }
    }
    want.sort_unstable();
    want
}

/// On every kernel-written cache image (both kernels; live, dirty, shut down), the listing
/// names exactly the cache blocks the kernel's mapping holds written sectors in.
#[test]
fn every_kernel_cache_image_lists_the_blocks_its_mapping_holds() {
    let era = temp_image(&fixture("era-basic.meta.img.gz"));
    let era = path_str(&era);
    let written = written_sectors(era);
    let mut images = 0;
    for dir in ["", "6.12/"] {
        for v in ["meta1", "meta2"] {
            for when in ["-live", "-dirty", ""] {
                let name = format!("{dir}cache-fixtures.{v}{when}.img.gz");
                let cache = temp_image(&fixture(&name));
                let cache = path_str(&cache);
                let want = cache_blocks_holding(cache, &written);
                assert!(!want.is_empty(), "{name}");
                let listed = run(
                    "era_invalidate",
                    &["--written-since", "1", "--cache-metadata", cache, era],
                );
                assert!(listed.success(), "{name}: {listed:?}");
                let got: Vec<u64> = listed
                    .stdout
                    .lines()
                    .map(pair)
                    .flat_map(|(b, e)| b..e)
                    .collect();
                assert_eq!(got, want, "{name}");
                images += 1;
            }
        }
    }
    assert_eq!(images, 12);
}

#[test]
fn the_cache_blocks_holding_written_origin_sectors_are_listed() {
    let era = temp_image(&fixture("era-basic.meta.img.gz"));
    let cache = temp_image(&fixture("cache-fixtures.meta2.img.gz"));
    let (era, cache) = (path_str(&era), path_str(&cache));
    let written = written_sectors(era);
    // What the cache holds, as its reader says (checked against the kernel's status in
    // cache_fixtures): the blocks any written sector falls in, found one by one.
    let want = cache_blocks_holding(cache, &written);
    assert!(!want.is_empty() && want.len() < 1024, "{want:?}");
    let expand = |ranges: Vec<(u64, u64)>| -> Vec<u64> {
        ranges.into_iter().flat_map(|(b, e)| b..e).collect()
    };
    let listed = run(
        "era_invalidate",
        &["--written-since", "1", "--cache-metadata", cache, era],
    );
    assert!(listed.success(), "{listed:?}");
    assert_eq!(expand(listed.stdout.lines().map(pair).collect()), want);
    // The messages name the same blocks.
    let args = [
        "--written-since",
        "1",
        "--cache-metadata",
        cache,
        "--messages",
        era,
    ];
    let messages = run("era_invalidate", &args);
    let mut named = Vec::new();
    for line in messages.stdout.lines() {
        let words = line.strip_prefix("invalidate_cblocks ").unwrap();
        for w in words.split(' ') {
            let (b, e) = match w.split_once('-') {
                Some((b, e)) => (b.parse().unwrap(), e.parse().unwrap()),
                None => (w.parse().unwrap(), w.parse::<u64>().unwrap() + 1),
            };
            named.push((b, e));
        }
    }
    assert_eq!(expand(named), want);
    // The JSON counts them.
    let args = [
        "--written-since",
        "1",
        "--cache-metadata",
        cache,
        "--format",
        "json",
        era,
    ];
    let json: serde_json::Value =
        serde_json::from_str(&run("era_invalidate", &args).stdout).unwrap();
    assert_eq!(json["cache"]["invalidated"], want.len());
    // cache-fixtures.sh made its caches with blocks of 128 sectors.
    assert_eq!(json["cache"]["block_size_sectors"], 128);
}
