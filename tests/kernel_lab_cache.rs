//! Opt-in: `era_invalidate --live --cache` after a rollback under a real dm-cache, in a QEMU
//! VM (tests/kernel-lab/era-cache-rollback.sh), on the lab's default kernel and on 6.12. Run
//! with `cargo test --release --test kernel_lab_cache -- --ignored --nocapture --test-threads 1`.
//!
//! What the cache must drop is worked out here from the scenario's own writes (the steps'
//! `write CASE PHASE BEGIN END` commands): in writeback a write of a whole cache block
//! caches it at once, a partial one does not (but one to a cached block lands in it), a
//! cache over dm-era writes cached blocks back whole, and dm-era marks whole era blocks. The cache
//! blocks that hold those origin blocks come from the kernel's metadata captured before the
//! command, whose mapping must itself agree with the writes and with `dmsetup status`. The
//! refusals (a held era snapshot, a table loaded meanwhile, metadata the kernel flagged after
//! a failed commit) are expected from what the scenario did and the status the kernel gave.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use common::lab::{carried_in, notes, run_lab_in, status_at, steps, target, Run};
use era_log_tools::pdata::io::MemIo;
use era_log_tools::{CacheMetadata, Mapping};
use serde_json::Value;

const SCENARIO: &str = "era-cache-rollback";
/// The cache device: 16 MiB.
const FAST_SECTORS: u64 = 32768;

/// One case of the scenario, from its `case` note.
#[derive(Debug)]
struct Case {
    name: String,
    /// `ce`: the cache over the era target; `ec`: the era target over the cache.
    order: String,
    era_bs: u64,
    cache_bs: u64,
    metadata: u32,
    /// `run` (the command), `control` (only --dry-run) or `recipe` (the README's scripts).
    mode: String,
    sectors: u64,
    /// The era saved by the recipe when the snapshot was taken.
    era: u64,
    /// Sector ranges written through the top device, by phase (`fill`, `before`, `after`).
    writes: Vec<(String, Range<u64>)>,
}

impl Case {
    /// Origin blocks of the cache's size that a write of the phases covered whole: cached.
    fn cached(&self) -> BTreeSet<u64> {
        let bs = self.cache_bs;
        self.writes
            .iter()
            .filter(|(p, _)| p == "before" || p == "after")
            .flat_map(|(_, r)| r.start.div_ceil(bs)..r.end / bs)
            .collect()
    }

    /// The sectors dm-era saw written after the checkpoint. Over the cache it sees the
    /// writes themselves; under it (`ce`), what the cache passed on: a write to an uncached
    /// block as it was, and for a cached block the whole block, written back.
    fn era_writes(&self) -> Vec<Range<u64>> {
        let after = self.writes.iter().filter(|(p, _)| p == "after");
        if self.order != "ce" {
            return after.map(|(_, r)| r.clone()).collect();
        }
        let (bs, cached) = (self.cache_bs, self.cached());
        after
            .flat_map(|(_, r)| (r.start / bs..r.end.div_ceil(bs)).map(move |b| (b, r.clone())))
            .map(|(b, r)| {
                if cached.contains(&b) {
                    b * bs..(b + 1) * bs
                } else {
                    r.start.max(b * bs)..r.end.min((b + 1) * bs)
                }
            })
            .collect()
    }

    /// The era blocks written after the checkpoint: what dm-era lists since the saved era.
    fn era_blocks(&self) -> BTreeSet<u64> {
        let bs = self.era_bs;
        self.era_writes()
            .into_iter()
            .flat_map(|r| r.start / bs..r.end.div_ceil(bs))
            .collect()
    }

    /// Origin blocks of the cache's size that share a sector with a written era block.
    fn marked(&self) -> BTreeSet<u64> {
        let (e, c) = (self.era_bs, self.cache_bs);
        self.era_blocks()
            .into_iter()
            .flat_map(|b| b * e / c..((b + 1) * e).min(self.sectors).div_ceil(c))
            .collect()
    }
}

fn word<'a>(text: &'a str, key: &str) -> &'a str {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

/// The cases, their eras and writes, from the manifest's steps.
fn cases(m: &Value) -> Vec<Case> {
    let mut out: Vec<Case> = Vec::new();
    for s in steps(m) {
        let cmd = s["command"].as_str().unwrap_or_default();
        if let Some(rest) = cmd.strip_prefix("case ") {
            out.push(Case {
                name: rest.split(' ').next().unwrap().to_owned(),
                order: word(rest, "order").to_owned(),
                era_bs: num(word(rest, "era_bs")),
                cache_bs: num(word(rest, "cache_bs")),
                metadata: word(rest, "metadata").parse().expect("metadata version"),
                mode: word(rest, "mode").to_owned(),
                sectors: num(word(rest, "sectors")),
                era: 0,
                writes: Vec::new(),
            });
        } else if let Some(rest) = cmd.strip_prefix("era ") {
            let (name, era) = rest.split_once(' ').unwrap();
            let c = out.last_mut().unwrap();
            assert_eq!(c.name, name);
            c.era = num(era);
        } else if s["kind"] == "write" {
            if let Some(rest) = cmd.strip_prefix("write ") {
                let f: Vec<&str> = rest.split(':').next().unwrap().split(' ').collect();
                let c = out.last_mut().unwrap();
                assert_eq!(c.name, f[0]);
                c.writes.push((f[1].to_owned(), num(f[2])..num(f[3])));
            }
        }
    }
    out
}

/// What `dmsetup status` said of the cache.
#[derive(Debug, PartialEq)]
struct CacheStatus {
    block_size: u64,
    mapped: u64,
    cache_blocks: u64,
    dirty: u64,
    mode: String,
}

/// The last status of `c` recorded at step `upto` or before.
fn cache_status(m: &Value, upto: u64) -> CacheStatus {
    let line = steps(m)
        .iter()
        .filter(|s| s["seq"].as_u64().unwrap() <= upto)
        .flat_map(|s| s["status"].as_array().into_iter().flatten())
        .rfind(|s| s["dm_name"] == "c")
        .and_then(|s| s["line"].as_str())
        .expect("a status of the cache");
    // 0 <len> cache <md bs> <used>/<total> <bs> <mapped>/<cblocks> <rh> <rm> <wh> <wm>
    //   <demotions> <promotions> <dirty> <#features> <features...> ...
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[2], "cache", "{line}");
    let (mapped, total) = f[6].split_once('/').unwrap();
    let mode = f
        .iter()
        .find(|w| ["writeback", "writethrough", "passthrough"].contains(w))
        .unwrap();
    CacheStatus {
        block_size: num(f[5]),
        mapped: num(mapped),
        cache_blocks: num(total),
        dirty: num(f[13]),
        mode: (*mode).to_owned(),
    }
}

/// The first step after step `after` that `pick` accepts.
fn step_of(m: &Value, after: u64, pick: impl Fn(&Value) -> bool) -> u64 {
    steps(m)
        .iter()
        .find(|s| s["seq"].as_u64().unwrap() > after && pick(s))
        .unwrap_or_else(|| panic!("no such step after {after}"))["seq"]
        .as_u64()
        .unwrap()
}

fn read_gz(path: &Path) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v = Vec::new();
    flate2::read::GzDecoder::new(f).read_to_end(&mut v).unwrap();
    v
}

/// The mapping of a captured cache metadata image, and its version.
fn mapping(dir: &Path, image: &str) -> (u32, Vec<Mapping>) {
    let file = dir.join(format!("{SCENARIO}.{image}.img.gz"));
    let md = CacheMetadata::from_io(Box::new(MemIo::from_bytes(read_gz(&file))))
        .unwrap_or_else(|e| panic!("{image}: {e}"));
    let all = md
        .mappings()
        .and_then(|ms| ms.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("{image}: {e}"));
    (md.superblock().version, all)
}

/// Ascending numbers as maximal half-open ranges.
fn ranges(set: &BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &b in set {
        match out.last_mut() {
            Some(r) if r.1 == b => r.1 += 1,
            _ => out.push((b, b + 1)),
        }
    }
    out
}

fn json_ranges(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .expect("ranges")
        .iter()
        .map(|r| (r["begin"].as_u64().unwrap(), r["end"].as_u64().unwrap()))
        .collect()
}

/// The era blocks a live JSON answer lists, whatever its units.
fn listed_era_blocks(v: &Value, era_bs: u64) -> BTreeSet<u64> {
    let per_sector = match v["units"].as_str() {
        Some("blocks") => return expand(&json_ranges(&v["ranges"])),
        Some("sectors") => 1,
        Some("bytes") => 512,
        other => panic!("units {other:?}"),
    };
    let unit = era_bs * per_sector;
    json_ranges(&v["ranges"])
        .into_iter()
        .flat_map(|(b, e)| b / unit..e.div_ceil(unit))
        .collect()
}

fn expand(r: &[(u64, u64)]) -> BTreeSet<u64> {
    r.iter().flat_map(|&(b, e)| b..e).collect()
}

/// What the state file of a guarded run says: every dm device and its state.
fn states(dir: &Path, run: &str) -> BTreeMap<String, String> {
    let file = dir.join(format!("{SCENARIO}.run.{run}.state"));
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .map(|l| {
            let (n, s) = l.split_once('=').unwrap();
            (n.to_owned(), s.to_owned())
        })
        .collect()
}

/// After a guarded run: the cache and the era targets `eras` there, every device active
/// (none left suspended), and no era target holding a metadata snapshot.
fn left_clean(m: &Value, dir: &Path, run: &Run, name: &str, eras: &[&str]) {
    let st = states(dir, name);
    for d in std::iter::once(&"c").chain(eras) {
        assert!(st.contains_key(*d), "{name}: no {d} in {st:?}");
    }
    assert!(st.values().all(|s| s == "ACTIVE"), "{name}: {st:?}");
    for e in eras {
        let era = status_at(m, run.step, e).expect("an era status after the run");
        assert!(
            era["parsed"]["held_metadata_root"].is_null(),
            "{name}: {e} holds a metadata snapshot: {}",
            era["line"]
        );
    }
}

/// A refusal: exit 1, one line on stderr that says each of `said`, and the JSON object with
/// the error's words.
fn refused(run: &Run, name: &str, said: &[&str]) {
    assert_eq!(run.code, 1, "{name}: {}{}", run.stdout, run.stderr);
    for words in said {
        assert!(run.stderr.contains(words), "{name}: {}", run.stderr);
    }
    assert_eq!(run.stderr.lines().count(), 1, "{name}: {}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    let what = v["error"].as_str().unwrap_or_default();
    assert!(
        !what.is_empty() && run.stderr.trim_end().ends_with(&format!("error: {what}")),
        "{name}: {}",
        run.stdout
    );
}

/// The `cache` object of a successful run, against what the case and the captured mapping
/// say must be invalidated.
fn check_cache_json(case: &Case, run: &Run, want: &[(u64, u64)], dry_run: bool) -> Value {
    let name = &case.name;
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    assert!(run.stderr.is_empty(), "{name}: {}", run.stderr);
    let v: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{name}: {e}: {}", run.stdout));
    // The live listing of the era target, as without --cache.
    assert_eq!(v["written_since"], case.era, "{name}");
    assert_eq!(v["block_size_sectors"], case.era_bs, "{name}");
    assert_eq!(v["origin_sectors"], case.sectors, "{name}");
    assert_eq!(v["snapshot_taken"], true, "{name}");
    assert_eq!(
        listed_era_blocks(&v, case.era_bs),
        case.era_blocks(),
        "{name}: the era blocks written since the snapshot's era"
    );
    let c = &v["cache"];
    let marked = case.marked();
    let cached = case.cached();
    let invalidated = marked.intersection(&cached).count() as u64;
    assert_eq!(c["block_size_sectors"], case.cache_bs, "{name}");
    assert_eq!(c["cache_blocks"], FAST_SECTORS / case.cache_bs, "{name}");
    assert_eq!(c["invalidated"], invalidated, "{name}: {c}");
    assert_eq!(c["written_origin_blocks"], marked.len() as u64, "{name}");
    assert_eq!(c["not_cached"], marked.len() as u64 - invalidated, "{name}");
    assert_eq!(json_ranges(&c["ranges"]), want, "{name}: cache blocks");
    assert_eq!(c["dry_run"], dry_run, "{name}");
    // Batches of at most 1000 ranges; the mapping read again after them.
    let messages = if dry_run {
        0
    } else {
        want.len().div_ceil(1000)
    };
    assert_eq!(c["messages"], messages, "{name}");
    assert_eq!(c["verified"], !dry_run, "{name}");
    let dev = c["device"].as_str().unwrap_or_default();
    assert!(dev == "c" || dev.ends_with("/c"), "{name}: device {dev}");
    println!(
        "{name}: {} era blocks of {} sectors written since era {}; {} origin blocks of {} \
         sectors, {invalidated} of them cached; cache ranges {:?}{}",
        case.era_blocks().len(),
        case.era_bs,
        case.era,
        marked.len(),
        case.cache_bs,
        want,
        if dry_run { " (dry run)" } else { "" }
    );
    v
}

/// The command killed while it held the cache suspended (the scenario's `kill -SIG` notes):
/// the exit status 128 + the signal, one line, the cache resumed, no snapshot held, no block
/// invalidated.
fn interrupted(m: &Value, name: &str) {
    let notes = notes(m);
    assert!(
        !notes.iter().any(|n| n.contains("the watcher never saw")),
        "{name}: the command ended before the cache was suspended"
    );
    let before = notes
        .iter()
        .position(|n| n.starts_with("kill: "))
        .expect("the interrupts ran");
    let start = steps(m)
        .iter()
        .find(|s| s["command"] == notes[before])
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    let mapped = cache_status(m, start).mapped;
    for (sig, status) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let note = notes
            .iter()
            .find(|n| n.starts_with(&format!("kill -{sig}: exit ")))
            .unwrap_or_else(|| panic!("{name}: no kill -{sig} note"));
        println!("{name}: {note}");
        assert!(note.contains(&format!("exit {status}; ")), "{note}");
        let states = note
            .split("states ")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        assert!(
            states.split(' ').all(|s| s.ends_with("=ACTIVE")) && states.contains("c=ACTIVE"),
            "{note}"
        );
        assert!(note.contains("; held -; "), "{note}");
        assert!(note.contains(&format!("; mapped {mapped}; ")), "{note}");
        let stderr = note.split("stderr (1 lines): ").nth(1).expect(note);
        assert!(
            stderr.contains(&format!("interrupted by SIG{sig}")),
            "{note}"
        );
    }
}

/// Every dm device ACTIVE after the guarded run `run` (none left suspended).
fn all_active(dir: &Path, run: &str) {
    let st = states(dir, run);
    assert!(st.contains_key("c"), "{run}: no c in {st:?}");
    assert!(st.values().all(|s| s == "ACTIVE"), "{run}: {st:?}");
}

/// What the command refuses or stops at on the control case's devices (the scenario's
/// `refusals`), each expected from what the scenario did and the kernel reported: a metadata
/// snapshot held by someone else, a table loaded while the command held the cache suspended,
/// the cache metadata's writes failing from then on, the cache the kernel left, and a cache
/// the kernel failed (the scenario's `failed`). `cached`
/// blocks were cached, `stale` of them written since the era, in `ranges` of cache blocks.
fn refusals(m: &Value, out: &str, name: &str, cached: u64, stale: u64, ranges: usize) {
    let dir = target().join(out);
    let notes = notes(m);
    let note = |prefix: &str| -> &str {
        notes
            .iter()
            .find_map(|n| n.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{name}: no note '{prefix}...'"))
    };
    let run = |r: &str| carried_in(m, out, &format!("{name}-{r}"));
    let untouched = |r: &str| {
        assert_eq!(
            note(&format!("{name}-{r}: c seen suspended during the run: ")),
            "no",
            "{name}-{r}: the cache was suspended"
        );
    };
    let held = |step: u64| {
        status_at(m, step, "e").expect("an era status after the run")["parsed"]
            ["held_metadata_root"]
            .clone()
    };

    // A snapshot held by someone else: the era session's refusal, the snapshot still held.
    let root = note("snap-held: e holds metadata snapshot ");
    let sh = run("snap-held");
    let said = format!("a metadata snapshot is already held (root {root}), by someone else");
    refused(&sh, name, &[&said]);
    untouched("snap-held");
    all_active(&dir, &format!("{name}-snap-held"));
    assert_eq!(
        held(sh.step).to_string(),
        root,
        "{name}: the snapshot is held"
    );
    assert_eq!(
        cache_status(m, sh.step).mapped,
        cache_status(m, sh.step - 1).mapped,
        "{name}: snapshot held, yet blocks were invalidated"
    );
    println!("{name}: snapshot {root} held: {}", sh.stderr.trim_end());

    // A writeback table loaded while the command held the cache suspended: live after the
    // command's resume, which stops there.
    assert!(
        note("table-changed: loader exit ").starts_with("0 "),
        "{name}: the table was not loaded while the command held the cache suspended"
    );
    let tc = run("table-changed");
    refused(
        &tc,
        name,
        &[
            "the cache's table changed during the run",
            "nothing was invalidated",
        ],
    );
    all_active(&dir, &format!("{name}-table-changed"));
    assert!(held(tc.step).is_null(), "{name}: e holds a snapshot");
    let live = note("table-changed: live table: ");
    assert!(
        live.contains(" writeback ") && !live.contains("passthrough"),
        "{name}: the loaded table is not live: {live}"
    );
    assert_eq!(note("table-changed: inactive table: "), "", "{name}");
    let (before, after) = (cache_status(m, tc.step - 1), cache_status(m, tc.step));
    assert_eq!(
        (before.mode.as_str(), after.mode.as_str()),
        ("passthrough", "writeback")
    );
    assert_eq!(
        after.mapped, before.mapped,
        "{name}: blocks invalidated after the table changed"
    );
    println!("{name}: table loaded meanwhile: {}", tc.stderr.trim_end());

    // Metadata writes failing from the command's first suspend on: the kernel took the
    // messages in memory (the mapped count drops by the stale blocks), its next commit failed,
    // and the mapping read again from the device still maps every stale block.
    assert!(
        note("writes-fail: swapper exit ").starts_with("0 "),
        "{name}: writes did not fail before the command resumed the cache"
    );
    let wf = run("writes-fail");
    let said = [
        format!(
            "the kernel could not commit the cache's metadata during the run, after {} \
             invalidate_cblocks messages, and now reports it read-only and flagged needs_check",
            ranges.div_ceil(1000)
        ),
        format!("still maps {stale} cache blocks to written blocks"),
    ];
    refused(&wf, name, &[&said[0], &said[1]]);
    let after = cache_status(m, wf.step);
    let flags = status_at(m, wf.step, "c").expect("a cache status")["line"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .rev()
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(flags, ["needs_check", "ro"], "{name}: the kernel's flags");
    assert_eq!(after.mapped, cached - stale, "{name}: taken in memory");
    assert!(
        !wf.stderr.contains("keep the cache in passthrough mode"),
        "{name}: {}",
        wf.stderr
    );
    all_active(&dir, &format!("{name}-writes-fail"));
    assert!(held(wf.step).is_null(), "{name}: e holds a snapshot");
    println!("{name}: metadata writes failing: {}", wf.stderr.trim_end());

    // The cache as the kernel left it: its status says what the refusal must be.
    let status = note("needs-check: status before: ");
    let words: Vec<&str> = status.split_whitespace().collect();
    let want = if words.contains(&"Fail") {
        "it has failed"
    } else if words.contains(&"needs_check") {
        "the cache's metadata is flagged needs_check"
    } else if words.contains(&"ro") {
        "the cache's metadata is read-only"
    } else {
        panic!("{name}: the kernel did not flag the cache: {status}")
    };
    let nc = run("needs-check");
    refused(&nc, name, &[want]);
    untouched("needs-check");
    all_active(&dir, &format!("{name}-needs-check"));
    assert!(held(nc.step).is_null(), "{name}: e holds a snapshot");
    println!("{name}: {status}: {}", nc.stderr.trim_end());

    // The cache made again over fresh metadata whose device then failed every read and
    // write: the kernel failed it (its status line is `Fail`, before the run and after it),
    // and the command refuses it without suspending it.
    let failed =
        |line: &str| line.split_whitespace().skip(2).collect::<Vec<_>>() == ["cache", "Fail"];
    let status = note("failed: status before: ");
    assert!(
        failed(status),
        "{name}: the kernel did not fail the cache: {status}"
    );
    let fl = run("failed");
    refused(
        &fl,
        name,
        &["the cache target reports 'Fail': it has failed"],
    );
    untouched("failed");
    all_active(&dir, &format!("{name}-failed"));
    let after = status_at(m, fl.step, "c").expect("a cache status after the run")["line"]
        .as_str()
        .unwrap_or_default();
    assert!(failed(after), "{name}: after the run: {after}");
    assert!(held(fl.step).is_null(), "{name}: e holds a snapshot");
    println!("{name}: {status}: {}", fl.stderr.trim_end());
}

fn one_case(m: &Value, out: &str, case: &Case) {
    let name = case.name.as_str();
    let dir = target().join(out);
    let run = |r: &str| carried_in(m, out, &format!("{name}-{r}"));
    let start = step_of(m, 0, |s| {
        s["command"]
            .as_str()
            .is_some_and(|c| c.starts_with(&format!("case {name} ")))
    });

    // The checkpoint: the README's recipe, whose saved era is the era target's new era.
    let cp = run("checkpoint");
    assert_eq!(cp.code, 0, "{name}: {}", cp.stderr);
    let era_now = status_at(m, cp.step, "e").expect("era status")["parsed"]["current_era"]
        .as_u64()
        .unwrap();
    assert_eq!(
        case.era, era_now,
        "{name}: the recipe saved the current era"
    );
    assert!(
        cp.stdout.contains(&format!("era {era_now} saved")),
        "{}",
        cp.stdout
    );

    // The premise: every whole-block write, and nothing else, was cached and written back.
    let cached = case.cached();
    let before_cmd = step_of(m, start, |s| s["kind"] == "capture");
    let pass = cache_status(m, before_cmd);
    assert_eq!(pass.mode, "passthrough", "{name}");
    assert_eq!(pass.block_size, case.cache_bs, "{name}");
    assert_eq!(pass.cache_blocks, FAST_SECTORS / case.cache_bs, "{name}");
    let (version, before) = mapping(&dir, &format!("{name}-before"));
    assert_eq!(version, case.metadata, "{name}: metadata version");
    let oblocks: BTreeSet<u64> = before.iter().map(|m| m.oblock).collect();
    assert_eq!(oblocks, cached, "{name}: the mapping before the command");
    assert_eq!(pass.mapped, cached.len() as u64, "{name}: cached blocks");
    assert_eq!(pass.dirty, 0, "{name}");
    assert!(before.iter().all(|m| !m.dirty), "{name}: all clean");
    // And some of the written blocks were not cached, some cached blocks not written.
    let marked = case.marked();
    assert!(marked.difference(&cached).count() > 0, "{name}");
    assert!(cached.difference(&marked).count() > 0, "{name}");

    let stale: BTreeSet<u64> = marked.intersection(&cached).copied().collect();
    let want_cblocks: BTreeSet<u64> = before
        .iter()
        .filter(|m| stale.contains(&m.oblock))
        .map(|m| m.cblock)
        .collect();
    let want = ranges(&want_cblocks);

    if case.order == "ce" && case.mode == "run" {
        // Refused in writeback: exit 1, one line, the cache as it was.
        let wb = run("writeback");
        refused(&wb, name, &["passthrough"]);
        let after = cache_status(m, wb.step);
        assert_eq!(after.mode, "writeback");
        assert_eq!(
            after.mapped,
            cached.len() as u64,
            "{name}: nothing invalidated"
        );
        left_clean(m, &dir, &wb, &format!("{name}-writeback"), &["e"]);
        println!("{name}: in writeback: {}", wb.stderr.trim_end());
    }

    let dry = (case.mode == "control" || (case.order == "ec" && case.mode == "run"))
        .then(|| run("dry-run"));
    if let Some(d) = &dry {
        check_cache_json(case, d, &want, true);
        assert_eq!(
            cache_status(m, d.step).mapped,
            cached.len() as u64,
            "{name}: --dry-run invalidated blocks"
        );
        left_clean(m, &dir, d, &format!("{name}-dry-run"), &["e"]);
    }

    if case.mode == "control" {
        // A cache and an era target over different disks: refused, the cache as it was.
        let ns = run("not-stacked");
        refused(&ns, name, &["not stacked"]);
        assert_eq!(
            cache_status(m, ns.step).mapped,
            cached.len() as u64,
            "{name}: not stacked, yet blocks were invalidated"
        );
        left_clean(m, &dir, &ns, &format!("{name}-not-stacked"), &["e", "e2"]);
        println!("{name}: not stacked: {}", ns.stderr.trim_end());
    }

    if case.mode == "control" {
        interrupted(m, name);
        let (c, s) = (cached.len() as u64, stale.len() as u64);
        refusals(m, out, name, c, s, want.len());
    }

    let (_, after) = mapping(&dir, &format!("{name}-after"));
    let cmp = run("cmp");
    if case.mode == "recipe" {
        // cache-passthrough.sh brought the cache to passthrough (checked above, with every
        // block clean); stale-after-rollback.sh ran the command and made the saved table live.
        let pt = run("passthrough");
        assert_eq!(pt.code, 0, "{name}: {}", pt.stderr);
        let inv = run("invalidate");
        assert_eq!(inv.code, 0, "{name}: {}", inv.stderr);
        assert!(
            inv.stdout.contains(&format!(
                "c: {} cache blocks invalidated",
                want_cblocks.len()
            )),
            "{name}: {}",
            inv.stdout
        );
        left_clean(m, &dir, &inv, &format!("{name}-invalidate"), &["e"]);
        let st = cache_status(m, inv.step);
        assert_eq!(
            st.mode, "writeback",
            "{name}: the saved table is live again"
        );
    }
    if case.mode == "run" || case.mode == "recipe" {
        let inv = run("invalidate");
        if case.mode == "run" {
            check_cache_json(case, &inv, &want, false);
            left_clean(m, &dir, &inv, &format!("{name}-invalidate"), &["e"]);
            assert_eq!(cache_status(m, inv.step).mode, "passthrough");
        }
        let st = cache_status(m, inv.step);
        assert_eq!(st.mapped, (cached.len() - stale.len()) as u64, "{name}");
        // Exactly the stale blocks left the cache; the others kept their places.
        let kept: Vec<Mapping> = before
            .iter()
            .filter(|m| !stale.contains(&m.oblock))
            .copied()
            .collect();
        assert_eq!(after, kept, "{name}: the mapping after the command");
        assert_eq!(
            cmp.code, 0,
            "{name}: the cache does not read back the snapshot: {}{}",
            cmp.stdout, cmp.stderr
        );
        println!(
            "{name}: invalidated {} cache blocks, {} stay cached; the top device reads \
             back the snapshot",
            stale.len(),
            kept.len()
        );
    } else {
        // The negative control: nothing sent, nothing dropped, stale data read back.
        assert_eq!(after, before, "{name}: the mapping is unchanged");
        assert_eq!(cmp.code, 1, "{name}: {}{}", cmp.stdout, cmp.stderr);
        // busybox cmp: "A B differ: char N, line L" with N counted from 1.
        let byte = cmp
            .stdout
            .split("char ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .map(num)
            .expect("the first differing byte")
            - 1;
        let block = byte / 512 / case.cache_bs;
        assert!(
            stale.contains(&block),
            "{name}: the first difference (byte {byte}) is not in a stale cached block"
        );
        println!("{name}: without the command the top device differs from the snapshot at byte {byte} (origin block {block}, cached and written since the snapshot)");
    }
}

fn check(out: &str, env: &[(&str, &Path)], release: &str) {
    let m = run_lab_in(SCENARIO, out, env);
    assert_eq!(m["result"], "ok", "a step failed in the guest");
    let kernel = m["kernel"]["release"].as_str().unwrap();
    assert!(kernel.starts_with(release), "kernel {kernel}");
    println!("kernel {kernel}");
    let cases = cases(&m);
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ce1", "ec2", "ctl", "rcp"]);
    for case in &cases {
        one_case(&m, out, case);
    }
}

#[test]
#[ignore = "boots a VM: needs QEMU and the shared kernel-lab"]
fn rollback_under_a_cache_on_the_default_kernel() {
    check("out-cache", &[], "6.1.");
}

#[test]
#[ignore = "boots a VM: needs QEMU, the shared kernel-lab and the 6.12 kernel package"]
fn rollback_under_a_cache_on_6_12() {
    let work: PathBuf = target().join("work-6.12");
    check(
        "out-cache-6.12",
        &[
            (
                "KLAB_KERNEL_PKG",
                Path::new("linux-image-6.12.100+deb12-amd64"),
            ),
            ("KLAB_WORK", &work),
        ],
        "6.12.",
    );
}
