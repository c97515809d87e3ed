//! Every writer run over recording devices, and every state a power cut could leave
//! (`pdata::crash_io`: the last flush plus any subset of the sectors written since) checked
//! after every operation. Era: a state is the old metadata, the new, or one that every
//! reader refuses as an interrupted run (the in-progress marker in block 0); a state some
//! reader accepts checks clean and dumps as the old or the new metadata. Log: the kernel,
//! reading a state at the next activation, trusts the clean bit of a region only where it
//! would trust it in the old log or in the new one, and, with legs, only where the legs
//! hold the same bytes in that state. The counts go to stderr (`--nocapture`).

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::ops::Range;
use std::path::Path;

use common::log::{clean_bit, repair_options, set_bit};
use common::Rng;
use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::dump::{dump, DumpOptions};
use era_log_tools::era::repair::repair as era_repair;
use era_log_tools::era::restore::restore as era_restore;
use era_log_tools::identify::{identify, Content, State, PROBE_BYTES};
use era_log_tools::log::backup::DeviceId;
use era_log_tools::log::format::UNDO_IN_PROGRESS;
use era_log_tools::log::restore::LogSpec;
use era_log_tools::log::resync::Leg;
use era_log_tools::log::run::{
    repair, restore, BackupSpec, Mode, NoProgress, Outcome, RepairOptions,
};
use era_log_tools::log::undo::{read_header, undo, UndoDevice, UndoOptions};
use era_log_tools::log::LogError;
use era_log_tools::pdata::crash_io::{
    crash_points, Budget, Clock, CrashIo, CrashPoint, Recording, StateCheck, StateIo,
};
use era_log_tools::pdata::io::{BlockIo, ByteIo, MemIo};
use era_log_tools::pdata::report::Severity;

/// What one writer's sweep looked at.
#[derive(Default)]
struct Tally {
    points: u64,
    states: u64,
    exhaustive_points: u64,
}

impl Tally {
    fn add(&mut self, p: &mut CrashPoint<'_>, budget: &Budget, check: &mut StateCheck<'_>) {
        let cov = p
            .for_each_state(budget, check)
            .unwrap_or_else(|e| panic!("{e}"));
        self.points += 1;
        self.states += cov.states;
        self.exhaustive_points += u64::from(cov.exhaustive);
    }

    fn report(&self, what: &str) {
        eprintln!(
            "{what}: {} crash points ({} enumerated exhaustively), {} states checked",
            self.points, self.exhaustive_points, self.states
        );
    }
}

// ---- era ----

const ERA_SOURCES: [&str; 2] = [
    "era-basic.meta.img.gz",
    "era-snap-held.removed-snap-held.img.gz",
];

fn era_xml(io: &dyn BlockIo) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    dump(io, &DumpOptions::default(), &mut out).ok()?;
    Some(out)
}

/// What the readers make of an era image: its dump when era_check finds nothing wrong.
fn era_accepted(img: &[u8]) -> Option<Vec<u8>> {
    let io = StateIo(img);
    let p = check(&io, CheckOptions::default());
    if p.worst() >= Some(Severity::Warning) {
        return None;
    }
    era_xml(&io)
}

/// The era invariant for one crash state.
fn era_state_ok(
    img: &[u8],
    old: &[u8],
    new: &[u8],
    old_xml: &Option<Vec<u8>>,
    new_xml: &[u8],
) -> Result<(), String> {
    if img == old || img == new {
        return Ok(());
    }
    let head = &img[..img.len().min(PROBE_BYTES as usize)];
    let content = identify(head);
    let io = StateIo(img);
    let p = check(&io, CheckOptions::default());
    let refused = p.worst() == Some(Severity::Error);
    if content == Content::Ours(&era_log_tools::era::format::FORMAT, State::Unfinished) {
        let advice = content
            .advice(&era_log_tools::era::format::FORMAT)
            .unwrap_or_default();
        return match (refused, advice.contains("interrupted")) {
            (true, true) => Ok(()),
            _ => Err(format!(
                "the marker is in block 0, yet era_check says {:?} and the advice {advice:?}",
                p.kept().first().map(|x| x.to_string())
            )),
        };
    }
    if refused {
        // Refused without the marker: only a device that held no usable metadata before
        // may be left so (the reader said the same of it).
        return match old_xml {
            None => Ok(()),
            Some(_) => Err(format!(
                "old metadata left refused without the marker: {:?}",
                p.kept().first().map(|x| x.to_string())
            )),
        };
    }
    match era_accepted(img) {
        Some(x) if x == new_xml || Some(&x) == old_xml.as_ref() => Ok(()),
        Some(_) => {
            Err("a state the readers accept holds neither the old nor the new metadata".into())
        }
        None => Err(format!(
            "a state era_check does not refuse but does not pass either: {:?}",
            p.kept().first().map(|x| x.to_string())
        )),
    }
}

/// The device contents an era writer may find: other metadata, zeros, or random bytes.
fn era_befores(size: usize) -> Vec<(&'static str, Vec<u8>)> {
    let other = common::fixture("era-snap-held.meta.img.gz");
    let mut rng = Rng(0xE4A);
    let noise: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
    vec![
        ("other metadata", other[..size].to_vec()),
        ("zeros", vec![0; size]),
        ("random bytes", noise),
    ]
}

fn era_sweep(writer: &str, run: &dyn Fn(&dyn BlockIo, &[u8]) -> bool) {
    let budget = Budget {
        samples: 24,
        ..Budget::default()
    };
    let mut tally = Tally::default();
    for src in ERA_SOURCES {
        let img = common::fixture(src);
        let xml = era_xml(&MemIo::from_bytes(img.clone())).expect("fixture dumps");
        for (what, before) in era_befores(img.len()) {
            let io = CrashIo::new(before.clone());
            assert!(run(&io, &img), "{writer} {src} onto {what}: the run failed");
            let rec = io.recording();
            let new = rec.last();
            assert_eq!(
                era_accepted(&new).as_ref(),
                Some(&xml),
                "{writer} {src}: result"
            );
            let old_xml = era_accepted(&before);
            crash_points(&[&rec], &mut |p| {
                let mut ok = |imgs: &[Vec<u8>]| {
                    era_state_ok(&imgs[0], &before, &new, &old_xml, &xml)
                        .map_err(|e| format!("{writer} {src} onto {what}: {e}"))
                };
                tally.add(p, &budget, &mut ok);
                Ok(())
            })
            .unwrap();
        }
    }
    tally.report(writer);
}

#[test]
fn era_restore_crash_states() {
    era_sweep("era_restore", &|io, img| {
        let xml = era_xml(&MemIo::from_bytes(img.to_vec())).unwrap();
        era_restore(Box::new(std::io::Cursor::new(xml)), io, &|_| {}).is_ok()
    });
}

#[test]
fn era_repair_crash_states() {
    era_sweep("era_repair", &|io, img| {
        era_repair(&MemIo::from_bytes(img.to_vec()), io).is_ok()
    });
}

// ---- log ----

const MAGIC: [u8; 4] = [0x72, 0x52, 0x69, 0x4D];
const REGIONS: usize = 512;
/// Two sectors per region, the smallest size, keep the legs small (512 KiB); the log does not
/// know the size.
const REGION_BYTES: usize = 1024;

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |n, &x| n << 8 | u64::from(x))
}

/// The regions whose clean bit the kernel trusts at the next activation of a mirror of
/// `regions` regions (docs/dirty-log-format.md §4.1, §4.2): none with a bad magic or
/// version; below the header's count (truncated to 32 bits), the bit on disk.
fn kernel_clean(log: &[u8], regions: usize) -> Vec<bool> {
    let valid = log[..4] == MAGIC && matches!(le(&log[4..8]), 1 | 2);
    let old = le(&log[8..16]) & 0xFFFF_FFFF;
    (0..regions)
        .map(|r| valid && (r as u64) < old && clean_bit(log, r))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    RewriteHeader,
    ForceResync,
    /// A log without the magic (the kernel resyncs everything), forced.
    ForceResyncBadMagic,
    /// A header for fewer regions, stale clean bits past them, `--nr-regions` the real count.
    ForceResyncGrow,
    ClearStrayBits,
    MarkClean,
    Resync,
    Verify,
    Restore,
    /// log_restore onto a device that held no log (all `0xFF`, as LVM2 fills one).
    RestoreOntoBlank,
}

const CASES: [Case; 10] = [
    Case::RewriteHeader,
    Case::ForceResync,
    Case::ForceResyncBadMagic,
    Case::ForceResyncGrow,
    Case::ClearStrayBits,
    Case::MarkClean,
    Case::Resync,
    Case::Verify,
    Case::Restore,
    Case::RestoreOntoBlank,
];

fn region(leg: &[u8], r: usize) -> &[u8] {
    &leg[r * REGION_BYTES..(r + 1) * REGION_BYTES]
}

/// The log and legs before the run of `case`.
fn log_setup(case: Case) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let crash = common::fixture("log-crash.log.img.gz");
    let mut log = crash.clone();
    let mut rng = Rng(0x106);
    let leg0: Vec<u8> = (0..REGIONS * REGION_BYTES)
        .map(|_| rng.next() as u8)
        .collect();
    let mut leg1 = leg0.clone();
    let dirty: Vec<usize> = (0..REGIONS).filter(|&r| !clean_bit(&crash, r)).collect();
    match case {
        Case::RewriteHeader => log[4] = 3,
        Case::ForceResyncBadMagic => log[..4].fill(0),
        Case::ForceResyncGrow | Case::ClearStrayBits => {
            log[8..16].copy_from_slice(&500u64.to_le_bytes());
            for r in 500..512 {
                set_bit(&mut log, r, true);
            }
        }
        Case::Resync => {
            for (i, &r) in dirty.iter().enumerate() {
                leg1[r * REGION_BYTES + (i * 97) % REGION_BYTES] ^= 0x5A;
            }
        }
        Case::Verify => leg1[300 * REGION_BYTES + 7] ^= 0x5A,
        Case::RestoreOntoBlank => log.fill(0xFF),
        Case::ForceResync | Case::MarkClean | Case::Restore => {}
    }
    (log, leg0, leg1)
}

/// Runs `case` on recording devices sharing one clock: the log, leg 0, leg 1.
fn log_run(case: Case) -> [Recording; 3] {
    let (log, leg0, leg1) = log_setup(case);
    let clock = Clock::new();
    let devs = [log, leg0, leg1].map(|b| CrashIo::on_clock(b, &clock));
    let [log, l0, l1] = &devs;
    let legs = [
        Leg {
            name: "leg0",
            offset: 0,
            io: l0,
        },
        Leg {
            name: "leg1",
            offset: 0,
            io: l1,
        },
    ];
    let written = match case {
        Case::Restore | Case::RestoreOntoBlank => {
            let dirty: Vec<Range<u64>> = vec![40..64, 256..300, 400..512];
            let spec = LogSpec {
                version: 2,
                nr_regions: REGIONS as u64,
                regions: REGIONS as u64,
                dirty,
            };
            restore(log, &spec, 512, false).map(|n| Outcome::Written { bytes: n })
        }
        _ => {
            let mode = match case {
                Case::RewriteHeader => Mode::RewriteHeader,
                Case::ForceResync | Case::ForceResyncBadMagic | Case::ForceResyncGrow => {
                    Mode::ForceResync
                }
                Case::ClearStrayBits => Mode::ClearStrayBits,
                Case::MarkClean => Mode::MarkClean(vec![48..50, 60..61]),
                Case::Resync => Mode::Resync(&legs),
                _ => Mode::Verify(&legs),
            };
            let on_sectors = matches!(case, Case::Resync | Case::Verify | Case::MarkClean);
            let opts = RepairOptions {
                nr_regions: matches!(case, Case::ForceResyncBadMagic | Case::ForceResyncGrow)
                    .then_some(REGIONS as u64),
                // The modes on the mirror's sectors take its geometry from the operator.
                region_size: on_sectors.then_some(2),
                length: on_sectors.then_some(REGIONS as u64 * 2),
                force: case == Case::ForceResyncBadMagic,
                ..repair_options(mode)
            };
            repair(log, &opts, &mut NoProgress, &mut Vec::new())
        }
    };
    assert!(
        matches!(written, Ok(Outcome::Written { .. })),
        "{case:?}: {written:?}"
    );
    devs.map(|d| d.recording())
}

/// The log invariant for one crash state of (log, legs...): `old` and `new` are the log
/// before and after the writer.
fn log_state_ok(imgs: &[Vec<u8>], old: &[u8], new: &[u8]) -> Result<(), String> {
    let log = &imgs[0];
    if log[..16] != old[..16] && log[..16] != new[..16] {
        return Err("a header neither old nor new".into());
    }
    // The legs hold the mirror: their size gives its region count.
    let regions = imgs[1].len() / REGION_BYTES;
    let clean = |l| kernel_clean(l, regions);
    let (now, before, after) = (clean(log), clean(old), clean(new));
    for r in 0..regions {
        if !now[r] {
            continue;
        }
        if !before[r] && !after[r] {
            return Err(format!(
                "the kernel would trust region {r} as clean, which neither the old nor the new \
                 log says"
            ));
        }
        if imgs[2..]
            .iter()
            .any(|l| region(l, r) != region(&imgs[1], r))
        {
            return Err(format!("region {r} is clean but its legs differ"));
        }
    }
    Ok(())
}

#[test]
fn log_writers_crash_states() {
    let budget = Budget {
        samples: 32,
        ..Budget::default()
    };
    for case in CASES {
        let recs = log_run(case);
        let (old, new) = (recs[0].initial().to_vec(), recs[0].last());
        assert!(old != new, "{case:?}: the run changed nothing");
        assert!(
            recs[1].events().next().is_none(),
            "{case:?}: leg 0 was written"
        );
        let mut tally = Tally::default();
        crash_points(&[&recs[0], &recs[1], &recs[2]], &mut |p| {
            let mut ok = |imgs: &[Vec<u8>]| {
                log_state_ok(imgs, &old, &new).map_err(|e| format!("{case:?}: {e}"))
            };
            tally.add(p, &budget, &mut ok);
            Ok(())
        })
        .unwrap();
        tally.report(&format!("log {case:?}"));
    }
}

// ---- log_repair --undo ----

/// A run with `--backup` that the undo puts back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UndoCase {
    /// `--resync` on a mirror of this many legs, given in the wrong order: the stale leg
    /// first, so the run copies its dirty regions over the good leg (and any third).
    Resync(usize),
    /// `--rewrite-header --nr-regions 512` over a header for 500 regions (the bits past
    /// them clean, the legs identical there, as the operator vouched).
    RewriteHeaderGrow,
    /// `--force-resync` of a log whose header stays.
    ForceResync,
    /// `--force-resync --nr-regions 512` over a header for 500 regions with stale clean
    /// bits past them, where the legs differ (why the operator forced a resync).
    ForceResyncGrow,
    /// `--force-resync --force` of a log without the magic, whose bits say clean where the
    /// legs differ.
    ForceResyncBadMagic,
    /// `--force-resync` of a log of `WIDE_REGIONS` regions, whose bits span two sectors: a
    /// write of them can be torn.
    ForceResyncWide,
}

/// Regions of the wide mirror: 1024 bytes of bits.
const WIDE_REGIONS: usize = 8192;

const UNDO_CASES: [UndoCase; 7] = [
    UndoCase::Resync(2),
    UndoCase::Resync(3),
    UndoCase::RewriteHeaderGrow,
    UndoCase::ForceResync,
    UndoCase::ForceResyncGrow,
    UndoCase::ForceResyncBadMagic,
    UndoCase::ForceResyncWide,
];

/// Makes `leg` differ in every sector of region `r`.
fn flip_region(leg: &mut [u8], r: usize, salt: usize) {
    for s in (0..REGION_BYTES).step_by(512) {
        leg[r * REGION_BYTES + s + (r * 97 + salt) % 512] ^= 0x5A;
    }
}

/// The log and the legs (in the order the run names them) before the run of `case`.
fn undo_setup(case: UndoCase) -> Vec<Vec<u8>> {
    let (mut log, regions) = match case {
        UndoCase::ForceResyncWide => (wide_log(), WIDE_REGIONS),
        _ => (common::fixture("log-crash.log.img.gz"), REGIONS),
    };
    match case {
        UndoCase::RewriteHeaderGrow | UndoCase::ForceResyncGrow => {
            log[8..16].copy_from_slice(&500u64.to_le_bytes());
            for r in 500..512 {
                set_bit(&mut log, r, true);
            }
        }
        UndoCase::ForceResyncBadMagic => log[..4].fill(0),
        UndoCase::Resync(_) | UndoCase::ForceResync | UndoCase::ForceResyncWide => {}
    }
    let mut rng = Rng(0x0DD);
    let good: Vec<u8> = (0..regions * REGION_BYTES)
        .map(|_| rng.next() as u8)
        .collect();
    let mut stale = good.clone();
    let mut third = good.clone();
    for r in 0..regions {
        // The regions the kernel would copy at the next activation, and those whose bits a
        // run left the kernel unable to trust.
        let differ = !clean_bit(&log, r)
            || (case == UndoCase::ForceResyncGrow && r >= 500)
            || (case == UndoCase::ForceResyncBadMagic && r % 7 == 0);
        if differ {
            flip_region(&mut stale, r, 0);
            flip_region(&mut third, r, 1);
        }
    }
    match case {
        // The stale leg named first: the run copies it over the good one.
        UndoCase::Resync(legs) => [log, stale, good, third]
            .into_iter()
            .take(legs + 1)
            .collect(),
        _ => vec![log, good, stale],
    }
}

/// The undo's invariant for one crash state of (log, legs...): the log as the run left it or
/// as it was before (`log_state_ok`, the run's log as the old one), or under the header the
/// undo writes while it rewrites the bits, which every reader names as an interrupted undo
/// and under which the kernel trusts no bit.
fn undo_state_ok(imgs: &[Vec<u8>], run: &[u8], orig: &[u8]) -> Result<(), String> {
    let log = &imgs[0];
    if !log.starts_with(UNDO_IN_PROGRESS) {
        return log_state_ok(imgs, run, orig);
    }
    let content = identify(&log[..log.len().min(PROBE_BYTES as usize)]);
    let advice = content
        .advice(&era_log_tools::log::format::FORMAT)
        .unwrap_or_default();
    if content != Content::Ours(&era_log_tools::log::format::FORMAT, State::Unfinished)
        || !advice.contains("interrupted log_repair --undo")
    {
        return Err(format!(
            "the undo's header, yet the readers find {content} and advise {advice:?}"
        ));
    }
    match kernel_clean(log, imgs[1].len() / REGION_BYTES)
        .iter()
        .position(|&c| c)
    {
        Some(r) => Err(format!(
            "the kernel would trust region {r} under the undo's header"
        )),
        None => Ok(()),
    }
}

/// A log of `WIDE_REGIONS` regions, dirty in each of its bits' sectors, as log_restore
/// writes it.
fn wide_log() -> Vec<u8> {
    let io = MemIo::from_bytes(vec![0; 4096]);
    let spec = LogSpec {
        version: 2,
        nr_regions: WIDE_REGIONS as u64,
        regions: WIDE_REGIONS as u64,
        dirty: vec![100..300, 4000..4200, 7000..7100],
    };
    restore(&io, &spec, 512, false).expect("the wide log is written");
    io.into_bytes()
}

fn device_id(name: &str, n: u64, size: usize) -> DeviceId {
    DeviceId {
        path: name.into(),
        size: size as u64,
        dev: 7,
        ino: n,
        rdev: 0,
    }
}

/// Runs `case` with a backup into `path` on memory devices; returns the devices after it.
fn undo_original_run(case: UndoCase, before: &[Vec<u8>], path: &Path) -> Vec<Vec<u8>> {
    let devs: Vec<MemIo> = before
        .iter()
        .map(|b| MemIo::from_bytes(b.clone()))
        .collect();
    let names = ["leg0", "leg1", "leg2"];
    let legs: Vec<Leg<'_>> = devs[1..]
        .iter()
        .zip(names)
        .map(|(io, name)| Leg {
            name,
            offset: 0,
            io,
        })
        .collect();
    let resync = matches!(case, UndoCase::Resync(_));
    let mode = match case {
        UndoCase::Resync(_) => Mode::Resync(&legs),
        UndoCase::RewriteHeaderGrow => Mode::RewriteHeader,
        _ => Mode::ForceResync,
    };
    let backup_legs = if resync {
        (1..before.len())
            .map(|i| device_id(names[i - 1], i as u64, before[i].len()))
            .collect()
    } else {
        Vec::new()
    };
    let opts = RepairOptions {
        nr_regions: matches!(
            case,
            UndoCase::RewriteHeaderGrow | UndoCase::ForceResyncGrow | UndoCase::ForceResyncBadMagic
        )
        .then_some(REGIONS as u64),
        region_size: resync.then_some(2),
        length: resync.then_some(REGIONS as u64 * 2),
        force: case == UndoCase::ForceResyncBadMagic,
        backup: Some(BackupSpec {
            path,
            log: device_id("log", 0, before[0].len()),
            legs: backup_legs,
        }),
        ..repair_options(mode)
    };
    let written = repair(&devs[0], &opts, &mut NoProgress, &mut Vec::new());
    assert!(
        matches!(written, Ok(Outcome::Written { .. })),
        "{case:?}: {written:?}"
    );
    drop(legs);
    devs.into_iter().map(MemIo::into_bytes).collect()
}

/// Runs the undo of the backup at `path` over `devs` (the log, then the legs in the run's
/// order; only the legs the backup names are handed to the undo).
fn run_undo(path: &Path, devs: &[&dyn ByteIo], sizes: &[usize]) -> Result<Outcome, LogError> {
    let header = read_header(path)?;
    let names = ["leg0", "leg1", "leg2"];
    let legs: Vec<UndoDevice<'_>> = devs[1..]
        .iter()
        .zip(names)
        .enumerate()
        .take(header.legs.len())
        .map(|(i, (&io, name))| UndoDevice {
            io,
            id: device_id(name, i as u64 + 1, sizes[i + 1]),
        })
        .collect();
    let log = UndoDevice {
        io: devs[0],
        id: device_id("log", 0, sizes[0]),
    };
    let opts = UndoOptions {
        backup: path,
        dry_run: false,
        force: false,
    };
    undo(&header, &log, &legs, &opts, &mut Vec::new())
}

#[test]
fn log_undo_crash_states() {
    let budget = Budget {
        exhaustive_up_to: 1 << 10,
        samples: 16,
        ..Budget::default()
    };
    let dir = tempfile::tempdir().unwrap();
    for case in UNDO_CASES {
        let before = undo_setup(case);
        let path = dir.path().join(format!("{case:?}.bak"));
        let after_run = undo_original_run(case, &before, &path);
        assert!(after_run != before, "{case:?}: the run changed nothing");
        let sizes: Vec<usize> = before.iter().map(Vec::len).collect();
        let clock = Clock::new();
        let devs: Vec<CrashIo> = after_run
            .iter()
            .map(|b| CrashIo::on_clock(b.clone(), &clock))
            .collect();
        let ios: Vec<&dyn ByteIo> = devs.iter().map(|d| d as &dyn ByteIo).collect();
        let undone = run_undo(&path, &ios, &sizes);
        assert!(
            matches!(undone, Ok(Outcome::Written { .. })),
            "{case:?}: {undone:?}"
        );
        let recs: Vec<Recording> = devs.iter().map(CrashIo::recording).collect();
        let finals: Vec<Vec<u8>> = recs.iter().map(Recording::last).collect();
        assert!(
            finals == before,
            "{case:?}: the undo did not put everything back"
        );
        let rec_refs: Vec<&Recording> = recs.iter().collect();
        let (run_log, orig_log) = (&after_run[0], &before[0]);
        let mut tally = Tally::default();
        let mut reruns = 0u64;
        let mut rng = Rng(0xA6A1);
        crash_points(&rec_refs, &mut |p| {
            let count = p.state_count();
            let all_landed = if count <= budget.exhaustive_up_to {
                count - 1
            } else {
                1
            };
            let mut index = 0u64;
            let mut ok = |imgs: &[Vec<u8>]| {
                let here = index;
                index += 1;
                undo_state_ok(imgs, run_log, orig_log).map_err(|e| format!("{case:?}: {e}"))?;
                // Every state of a small point, the extremes and a sample of the others.
                let again = count <= 64 || here == 0 || here == all_landed || rng.below(16) == 0;
                if !again {
                    return Ok(());
                }
                // The undo run again from this state finishes it.
                reruns += 1;
                let again: Vec<MemIo> = imgs.iter().map(|b| MemIo::from_bytes(b.clone())).collect();
                let ios: Vec<&dyn ByteIo> = again.iter().map(|d| d as &dyn ByteIo).collect();
                run_undo(&path, &ios, &sizes)
                    .map_err(|e| format!("{case:?}: the undo run again fails: {e}"))?;
                let out: Vec<Vec<u8>> = again.into_iter().map(MemIo::into_bytes).collect();
                if out != before {
                    return Err(format!(
                        "{case:?}: the undo run again leaves other bytes than before the run"
                    ));
                }
                Ok(())
            };
            tally.add(p, &budget, &mut ok);
            Ok(())
        })
        .unwrap();
        tally.report(&format!("log_repair --undo {case:?}"));
        eprintln!("log_repair --undo {case:?}: {reruns} states where the undo was run again");
    }
}
