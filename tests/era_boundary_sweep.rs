//! Summary fields of every kind of block at their boundary values, re-sealed: no reader
//! panics, and era_check rejects every change that alters what a reader sees.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use common::*;
use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::dump::{dump, DumpOptions, Stream};
use era_log_tools::era::format::superblock::Superblock;
use era_log_tools::era::invalidate::written_since;
use era_log_tools::era::repair::repair;
use era_log_tools::era::view::View;
use era_log_tools::pdata::btree::node::Node;
use era_log_tools::pdata::checksum::BlockKind;
use era_log_tools::pdata::io::{BlockIo, FileIo, MemIo, OpenMode, BLOCK_SIZE};
use era_log_tools::pdata::report::Severity;

/// What a block referenced by the metadata is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Superblock,
    Snapshot,
    InternalNode,
    WritesetLeaf,
    ArrayLeaf,
    OverflowLeaf,
    EraArrayBlock,
    BitsetBlock,
    SmIndex,
    SmBitmap,
}

/// The blocks reachable from block 0 of an intact image, with their kinds.
struct Layout {
    blocks: BTreeMap<u64, Kind>,
}

impl Layout {
    fn empty() -> Layout {
        Layout {
            blocks: BTreeMap::new(),
        }
    }

    fn of(img: &[u8]) -> Layout {
        let mut l = Layout::empty();
        let sb = Superblock::unpack(block(img, 0));
        l.blocks.insert(0, Kind::Superblock);
        l.view(img, &sb, true);
        if sb.metadata_snap != 0 {
            l.blocks.insert(sb.metadata_snap, Kind::Snapshot);
            l.view(
                img,
                &Superblock::unpack(block(img, sb.metadata_snap)),
                false,
            );
        }
        l.blocks.insert(sb.sm_root.bitmap_root, Kind::SmIndex);
        let index = block(img, sb.sm_root.bitmap_root);
        let nr_bitmaps = sb.sm_root.nr_blocks.div_ceil(16_320) as usize;
        for i in 0..nr_bitmaps {
            l.blocks.insert(le64(index, 16 + 16 * i), Kind::SmBitmap);
        }
        l.tree(img, sb.sm_root.ref_count_root, 4, &mut |_, _| {});
        l
    }

    fn view(&mut self, img: &[u8], sb: &Superblock, live: bool) {
        let mut bitsets = Vec::new();
        self.tree(img, sb.writeset_tree_root, 12, &mut |_, v| {
            bitsets.push(le64(v, 4))
        });
        if live && sb.current_writeset.root != 0 {
            bitsets.push(sb.current_writeset.root);
        }
        for root in bitsets {
            self.array(img, root, Kind::BitsetBlock);
        }
        self.array(img, sb.era_array_root, Kind::EraArrayBlock);
    }

    fn array(&mut self, img: &[u8], root: u64, kind: Kind) {
        let mut ablocks = Vec::new();
        self.tree(img, root, 8, &mut |_, v| ablocks.push(le64(v, 0)));
        for loc in ablocks {
            self.blocks.insert(loc, kind);
        }
    }

    /// Walks the b-tree at `root`, handing each leaf entry to `leaf`.
    fn tree(&mut self, img: &[u8], root: u64, vs: u32, leaf: &mut dyn FnMut(u64, &[u8])) {
        let node = Node::parse(block(img, root), root, vs).expect("intact kernel node");
        if node.is_leaf() {
            let kind = match vs {
                12 => Kind::WritesetLeaf,
                8 => Kind::ArrayLeaf,
                _ => Kind::OverflowLeaf,
            };
            self.blocks.insert(root, kind);
            for i in 0..node.len() {
                leaf(node.key(i), node.value(i));
            }
        } else {
            self.blocks.insert(root, Kind::InternalNode);
            for i in 0..node.len() {
                self.tree(img, node.child(i), vs, leaf);
            }
        }
    }
}

/// The last array block of the era array, and how many values it holds.
fn last_era_array_block(img: &[u8]) -> (u64, u32) {
    let sb = Superblock::unpack(block(img, 0));
    let mut last = None;
    Layout::empty().tree(img, sb.era_array_root, 8, &mut |_, v| {
        last = Some(le64(v, 0))
    });
    let loc = last.expect("a non-empty era array");
    (loc, le32(block(img, loc), 8))
}

/// An era-array block whose `nr_entries` claims the whole block, re-sealed, with non-zero
/// stale slots: the values past the array's end used to reach era_invalidate, which
/// indexed its bitmap with them and panicked.
#[test]
fn an_era_array_block_claiming_the_whole_block_is_an_error_not_a_panic() {
    let mut tried = 0;
    for name in era_images() {
        let mut img = fixture(&name);
        if img.len() > 8 << 20 {
            continue;
        }
        let (loc, nr_entries) = last_era_array_block(&img);
        if nr_entries == 1018 {
            continue;
        }
        tried += 1;
        let b = block_mut(&mut img, loc);
        for slot in nr_entries as usize..1018 {
            put32(b, 24 + 4 * slot, 1);
        }
        put32(b, 8, 1018);
        reseal(&mut img, loc, BlockKind::ARRAY_BLOCK);
        let io = MemIo::from_bytes(img);
        let view = View::open(&io, false).expect("the superblock is intact");
        for since in [1, view.current_era()] {
            let r = written_since(&io, &view, since);
            let e = r.expect_err("a damaged era array is an error, never a list");
            assert!(e.to_string().contains("era array"), "{name}: {e}");
        }
        let p = check(&io, CheckOptions::default());
        assert_eq!(p.worst(), Some(Severity::Error), "{name}");
        for logical in [false, true] {
            let opts = DumpOptions {
                logical,
                ..DumpOptions::default()
            };
            assert!(dump(&io, &opts, &mut std::io::sink()).is_err(), "{name}");
        }
    }
    assert!(
        tried >= 12,
        "only {tried} images with a short last era-array block"
    );
}

/// A block past the most a metadata space map can map (4,161,600 blocks) is out of range
/// for era_check and for every reader alike, even on a device that large whose space-map
/// root claims more: readers used to bound block numbers by the device and the space map
/// only, and dumped what era_check rejected.
#[test]
fn era_check_and_every_reader_share_one_bound_on_block_numbers() {
    const MAX_MAPPED: u64 = 4_161_600;
    let mut img = fixture("era-basic.meta.img.gz");
    let sb = Superblock::unpack(block(&img, 0));
    let moved = MAX_MAPPED + 5;
    let mut root = block(&img, sb.era_array_root).to_vec();
    era_log_tools::pdata::checksum::seal(&mut root, BlockKind::BTREE_NODE, moved);
    let sb0 = block_mut(&mut img, 0);
    put64(sb0, 44, MAX_MAPPED + 10);
    put64(sb0, 208, moved);
    reseal(&mut img, 0, era_log_tools::era::format::SUPERBLOCK);
    let f = temp_image(&img);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(f.path())
        .unwrap();
    file.set_len((MAX_MAPPED + 10) * BLOCK_SIZE as u64).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &root, moved * BLOCK_SIZE as u64).unwrap();
    let io = FileIo::open(f.path(), OpenMode::ReadExclusive).unwrap();

    let p = check(&io, CheckOptions::default());
    let out_of_range =
        |e: &str| e.contains(&format!("block {moved}")) && e.contains("out of range");
    assert!(
        p.kept().iter().any(|p| out_of_range(&p.to_string())),
        "{:?}",
        p.kept()
    );
    let e = dump(&io, &DumpOptions::default(), &mut std::io::sink()).unwrap_err();
    assert!(out_of_range(&e.to_string()), "{e}");
    let view = View::open(&io, false).unwrap();
    let e = written_since(&io, &view, 1).unwrap_err();
    assert!(out_of_range(&e.to_string()), "{e}");
}

/// How a field's value reaches what a reader prints.
#[derive(Debug, Clone, Copy)]
enum Meaning {
    /// It is structure: any change a reader notices must be rejected by era_check.
    Structure,
    /// It is data that readers print as it is (a block size, a writeset length): another
    /// value can be as valid as the kernel's.
    Data,
    /// A current era: a value below the newest era the metadata holds (`.0`) must be
    /// rejected; any other is data.
    CurrentEra(u32),
}

/// A header field of a block.
struct Field {
    name: &'static str,
    at: usize,
    width: usize,
    /// Values around which the boundaries lie, besides 0 and the type's maximum.
    maxes: Vec<u64>,
    meaning: Meaning,
}

fn field(name: &'static str, at: usize, width: usize, maxes: &[u64]) -> Field {
    Field {
        name,
        at,
        width,
        maxes: maxes.to_vec(),
        meaning: Meaning::Structure,
    }
}

fn data(mut f: Field, meaning: Meaning) -> Field {
    f.meaning = meaning;
    f
}

/// What the layout knows of an image beyond its blocks.
struct Facts {
    dev_blocks: u64,
    /// The newest era held by the live metadata, and by the held snapshot.
    newest_era: (u32, u32),
}

/// The fields of a superblock copy (block 0, or the held snapshot).
fn superblock_fields(kind: Kind, b: &[u8], facts: &Facts) -> Vec<Field> {
    let dev = facts.dev_blocks;
    let newest = match kind {
        Kind::Superblock => facts.newest_era.0,
        _ => facts.newest_era.1,
    };
    let nr_blocks = le32(b, 180) as u64;
    vec![
        field("flags", 4, 4, &[1]),
        field("blocknr", 8, 8, &[dev]),
        field("uuid", 16, 8, &[0]),
        field("magic", 32, 8, &[le64(b, 32)]),
        field("version", 40, 4, &[1]),
        field("sm nr_blocks", 44, 8, &[dev, 4_161_600]),
        field("sm nr_allocated", 52, 8, &[le64(b, 44)]),
        field("sm bitmap_root", 60, 8, &[dev]),
        field("sm ref_count_root", 68, 8, &[dev]),
        data(field("data_block_size", 172, 4, &[8]), Meaning::Data),
        field("metadata_block_size", 176, 4, &[8]),
        field("nr_blocks", 180, 4, &[nr_blocks, 1 << 31, dev * 1018]),
        data(
            field("current_era", 184, 4, &[le32(b, 184) as u64]),
            Meaning::CurrentEra(newest),
        ),
        data(
            field("current_writeset nr_bits", 188, 4, &[nr_blocks]),
            Meaning::Data,
        ),
        field("current_writeset root", 192, 8, &[dev]),
        field("writeset_tree_root", 200, 8, &[dev]),
        field("era_array_root", 208, 8, &[dev]),
        field("metadata_snap", 216, 8, &[dev]),
    ]
}

/// The header fields of a block of `kind`.
fn fields_of(kind: Kind, b: &[u8], facts: &Facts) -> Vec<Field> {
    let dev = facts.dev_blocks;
    match kind {
        Kind::Superblock | Kind::Snapshot => superblock_fields(kind, b, facts),
        Kind::InternalNode | Kind::WritesetLeaf | Kind::ArrayLeaf | Kind::OverflowLeaf => vec![
            field("flags", 4, 4, &[2]),
            field("blocknr", 8, 8, &[dev]),
            field("nr_entries", 16, 4, &[le32(b, 20) as u64]),
            field("max_entries", 20, 4, &[le32(b, 20) as u64]),
            field("value_size", 24, 4, &[le32(b, 24) as u64]),
            field("padding", 28, 4, &[0]),
        ],
        Kind::EraArrayBlock | Kind::BitsetBlock => vec![
            field("max_entries", 4, 4, &[le32(b, 4) as u64]),
            field("nr_entries", 8, 4, &[le32(b, 4) as u64]),
            field("value_size", 12, 4, &[le32(b, 12) as u64]),
            field("blocknr", 16, 8, &[dev]),
        ],
        Kind::SmIndex => {
            let mut v = vec![field("padding", 4, 4, &[0]), field("blocknr", 8, 8, &[dev])];
            let used = (0..255).take_while(|i| le64(b, 16 + 16 * i) != 0).count();
            for (o, [blocknr, nr_free, hint]) in [
                (
                    16,
                    [
                        "entry 0 blocknr",
                        "entry 0 nr_free",
                        "entry 0 none_free_before",
                    ],
                ),
                (
                    16 + 16 * used,
                    [
                        "unused entry blocknr",
                        "unused entry nr_free",
                        "unused entry none_free_before",
                    ],
                ),
            ] {
                v.push(field(blocknr, o, 8, &[dev]));
                v.push(field(nr_free, o + 8, 4, &[16_320]));
                v.push(field(hint, o + 12, 4, &[16_320]));
            }
            v
        }
        Kind::SmBitmap => vec![
            field("not_used", 4, 4, &[0]),
            field("blocknr", 8, 8, &[dev]),
        ],
    }
}

/// The boundary values of `f` other than the one the block holds.
fn boundary_values(f: &Field, orig: u64) -> Vec<u64> {
    let top = if f.width == 4 {
        u32::MAX as u64
    } else {
        u64::MAX
    };
    let mut v = vec![
        0,
        1,
        top,
        orig.saturating_sub(1),
        orig.saturating_add(1).min(top),
    ];
    for &m in &f.maxes {
        let m = m.min(top);
        v.extend([m.saturating_sub(1), m, m.saturating_add(1).min(top)]);
    }
    v.sort_unstable();
    v.dedup();
    v.retain(|&x| x != orig);
    v
}

impl Layout {
    /// The newest era the roots of `sb` hold: the largest writeset-tree key and era-array
    /// value.
    fn newest_era(img: &[u8], sb: &Superblock) -> u32 {
        let mut l = Layout::empty();
        let mut newest = 0u32;
        l.tree(img, sb.writeset_tree_root, 12, &mut |k, _| {
            newest = newest.max(k as u32)
        });
        let mut ablocks = Vec::new();
        l.tree(img, sb.era_array_root, 8, &mut |_, v| {
            ablocks.push(le64(v, 0))
        });
        for loc in ablocks {
            let b = block(img, loc);
            for slot in 0..le32(b, 8) as usize {
                newest = newest.max(le32(b, 24 + 4 * slot));
            }
        }
        newest
    }

    fn facts(img: &[u8]) -> Facts {
        let sb = Superblock::unpack(block(img, 0));
        let snap = match sb.metadata_snap {
            0 => 0,
            s => Layout::newest_era(img, &Superblock::unpack(block(img, s))),
        };
        Facts {
            dev_blocks: (img.len() / BLOCK_SIZE) as u64,
            newest_era: (Layout::newest_era(img, &sb), snap),
        }
    }
}

/// Fills the unused slots of every array block with values a reader would take for real
/// ones (era 1, all bits set), as stale slots left by a shrink are.
fn fill_stale_slots(img: &mut [u8], layout: &Layout) {
    for (&loc, &kind) in &layout.blocks {
        let vs = match kind {
            Kind::EraArrayBlock => 4,
            Kind::BitsetBlock => 8,
            _ => continue,
        };
        let b = block_mut(img, loc);
        let (max, used) = (le32(b, 4) as usize, le32(b, 8) as usize);
        for slot in used..max {
            let at = 24 + vs * slot;
            match vs {
                4 => put32(b, at, 1),
                _ => put64(b, at, u64::MAX),
            }
        }
        reseal(img, loc, BlockKind::ARRAY_BLOCK);
    }
}

/// What every reader makes of the metadata on `io`, as one hash: for block 0 and the held
/// snapshot, era_invalidate for each era of `since` and era_dump in each mode (its stream,
/// its errors and what `--repair` reports). With `xml`, era_dump also writes its XML.
fn seen_by_readers(io: &MemIo, since: &[u32], xml: bool) -> u64 {
    let mut h = DefaultHasher::new();
    for snap in [false, true] {
        match View::open(io, snap) {
            Err(e) => e.to_string().hash(&mut h),
            Ok(view) => {
                for &n in since {
                    match written_since(io, &view, n) {
                        Ok(w) => {
                            w.words.hash(&mut h);
                            for p in &w.warnings {
                                p.to_string().hash(&mut h);
                            }
                        }
                        Err(e) => e.to_string().hash(&mut h),
                    }
                }
            }
        }
        for (logical, repair) in [(false, false), (true, false), (false, true)] {
            let opts = DumpOptions {
                logical,
                repair,
                metadata_snap: snap,
            };
            match Stream::open(io, &opts) {
                Err(e) => e.to_string().hash(&mut h),
                Ok(mut src) => {
                    let r = match logical {
                        true => src.stream_logical(&mut Recorder::hashing(&mut h)),
                        false => src.stream(&mut Recorder::hashing(&mut h)),
                    };
                    r.map_err(|e| e.to_string()).hash(&mut h);
                    for p in src.problems().kept() {
                        p.to_string().hash(&mut h);
                    }
                }
            }
            if xml {
                let _ = dump(io, &opts, &mut std::io::sink());
            }
        }
    }
    h.finish()
}

/// One change to try: a field of a block set to a value.
struct Case {
    loc: u64,
    kind: Kind,
    name: &'static str,
    at: usize,
    width: usize,
    value: u64,
    meaning: Meaning,
}

impl Case {
    fn apply(&self, base: &[u8]) -> Vec<u8> {
        let mut img = base.to_vec();
        let b = block_mut(&mut img, self.loc);
        match self.width {
            4 => put32(b, self.at, self.value as u32),
            _ => put64(b, self.at, self.value),
        }
        let kind = match self.kind {
            Kind::Superblock | Kind::Snapshot => era_log_tools::era::format::SUPERBLOCK,
            Kind::EraArrayBlock | Kind::BitsetBlock => BlockKind::ARRAY_BLOCK,
            Kind::SmIndex => BlockKind::SM_INDEX,
            Kind::SmBitmap => BlockKind::SM_BITMAP,
            _ => BlockKind::BTREE_NODE,
        };
        reseal(&mut img, self.loc, kind);
        img
    }

    /// Whether era_check must reject the change once readers see it.
    fn must_be_rejected(&self) -> bool {
        match self.meaning {
            Meaning::Structure => true,
            Meaning::Data => false,
            Meaning::CurrentEra(newest) => (self.value as u32) < newest,
        }
    }
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} at block {}: {} = {}",
            self.kind, self.loc, self.name, self.value
        )
    }
}

/// The blocks whose fields are swept: all of them, or for a large image the first and
/// the last of each kind.
fn blocks_to_sweep(layout: &Layout, sample: bool) -> Vec<(u64, Kind)> {
    let mut by_kind: BTreeMap<Kind, Vec<u64>> = BTreeMap::new();
    for (&loc, &kind) in &layout.blocks {
        by_kind.entry(kind).or_default().push(loc);
    }
    let mut out = Vec::new();
    for (kind, locs) in by_kind {
        if sample && locs.len() > 2 {
            out.push((locs[0], kind));
            out.push((locs[locs.len() - 1], kind));
        } else {
            out.extend(locs.into_iter().map(|l| (l, kind)));
        }
    }
    out
}

fn cases(base: &[u8], layout: &Layout, sample: bool) -> Vec<Case> {
    let facts = Layout::facts(base);
    let mut out = Vec::new();
    for (loc, kind) in blocks_to_sweep(layout, sample) {
        let b = block(base, loc);
        for f in fields_of(kind, b, &facts) {
            let orig = match f.width {
                4 => le32(b, f.at) as u64,
                _ => le64(b, f.at),
            };
            for value in boundary_values(&f, orig) {
                out.push(Case {
                    loc,
                    kind,
                    name: f.name,
                    at: f.at,
                    width: f.width,
                    value,
                    meaning: f.meaning,
                });
            }
        }
    }
    out
}

/// Runs every reader, era_check and era_repair on one changed image. Returns whether the
/// readers saw the change, and what went wrong, if anything.
fn run_case(
    case: &Case,
    base: &[u8],
    since: &[u32],
    base_seen: u64,
    xml: bool,
) -> (bool, Option<String>) {
    let io = MemIo::from_bytes(case.apply(base));
    let seen = seen_by_readers(&io, since, xml);
    let changed = seen != base_seen;
    (changed, verdicts(case, &io, changed))
}

/// era_check's verdict on a change the readers saw (`changed`), and era_repair's output.
fn verdicts(case: &Case, io: &MemIo, changed: bool) -> Option<String> {
    let verdict = check(io, CheckOptions::default()).worst();
    let snapshot_only = CheckOptions {
        super_block_only: false,
        metadata_snap: true,
    };
    let _ = check(io, snapshot_only);
    if changed && case.must_be_rejected() && verdict < Some(Severity::Warning) {
        return Some(format!(
            "{case}: readers see a change that era_check accepts"
        ));
    }
    let out = MemIo::new(io.nr_blocks());
    if repair(io, &out).is_ok() {
        let p = check(&out, CheckOptions::default());
        if p.worst() >= Some(Severity::Warning) {
            let first = p.kept().first().map(|p| p.to_string());
            return Some(format!(
                "{case}: era_repair wrote metadata era_check rejects: {first:?}"
            ));
        }
    }
    None
}

/// Runs `cases` on as many threads as there are cores (at most 4); returns how many
/// changes the readers saw, and the failures.
fn run_all(
    cases: &[Case],
    base: &[u8],
    since: &[u32],
    base_seen: u64,
    xml: bool,
) -> (usize, Vec<String>) {
    let next = AtomicUsize::new(0);
    let seen = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let r = catch_unwind(AssertUnwindSafe(|| {
                    run_case(case, base, since, base_seen, xml)
                }));
                let failure = match r {
                    Ok((changed, f)) => {
                        seen.fetch_add(usize::from(changed), Ordering::Relaxed);
                        f
                    }
                    Err(_) => Some(format!("{case}: panicked")),
                };
                if let Some(f) = failure {
                    failures.lock().unwrap().push(f);
                }
            });
        }
    });
    (seen.into_inner(), failures.into_inner().unwrap())
}

/// Images up to this size are swept whole, and their XML is written too.
const SMALL_IMAGE: usize = 8 << 20;

/// Keeps the sweep of a large image within a few seconds: every k-th case, so that each
/// field keeps some of its values and the values kept differ from field to field.
fn sample(cases: Vec<Case>, image_bytes: usize) -> Vec<Case> {
    let budget = match image_bytes {
        n if n <= 2 * SMALL_IMAGE => return cases,
        n if n <= 32 << 20 => 100,
        _ => 24,
    };
    let stride = cases.len().div_ceil(budget);
    cases.into_iter().step_by(stride).collect()
}

/// Prints a line past the test harness's capture of the output, so that a passing run
/// shows it too.
fn show(line: &str) {
    if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
        let _ = writeln!(std::fs::File::from(fd), "{line}");
    }
}

/// Every header field of every kind of block the kernel images reference, at its boundary
/// values, re-sealed, with the stale slots of array blocks filled: no reader panics,
/// era_check rejects every change that alters what a reader sees (unless the field is
/// data that can take the new value), and whatever era_repair writes passes era_check.
/// Large images are sampled: the first and the last block of each kind.
#[test]
fn header_fields_at_their_boundaries() {
    let started = Instant::now();
    let (mut total, mut seen) = (0, 0);
    let mut kinds = BTreeSet::new();
    let mut failures = Vec::new();
    for name in era_images() {
        let mut base = fixture(&name);
        let layout = Layout::of(&base);
        let small = base.len() <= SMALL_IMAGE;
        let sb = Superblock::unpack(block(&base, 0));
        let era = sb.current_era;
        let since = [1, era / 2, era, era.saturating_add(1)];
        let orig_seen = seen_by_readers(&MemIo::from_bytes(base.clone()), &since, false);
        fill_stale_slots(&mut base, &layout);
        let base_seen = seen_by_readers(&MemIo::from_bytes(base.clone()), &since, false);
        assert_eq!(orig_seen, base_seen, "{name}: stale slots are visible");
        let cases = sample(cases(&base, &layout, !small), base.len());
        total += cases.len();
        kinds.extend(cases.iter().map(|c| c.kind));
        let case_started = Instant::now();
        let (changed, failed) = run_all(&cases, &base, &since, base_seen, small);
        seen += changed;
        failures.extend(failed.into_iter().map(|f| format!("{name}: {f}")));
        show(&format!(
            "era boundary sweep: {name}: {} cases ({changed} seen by readers) in {:.1?}",
            cases.len(),
            case_started.elapsed()
        ));
    }
    show(&format!(
        "era boundary sweep: {total} cases ({seen} seen by readers) in {:.1?}, {} failures",
        started.elapsed(),
        failures.len()
    ));
    assert!(total > 5000, "only {total} cases");
    assert_eq!(kinds.len(), 10, "kinds swept: {kinds:?}");
    assert!(
        seen > total / 3,
        "readers saw only {seen} of {total} changes"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
