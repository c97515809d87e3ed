//! Every writer run over recording devices, and every state a power cut could leave
//! (`pdata::crash_io`: the last flush plus any subset of the sectors written since) checked
//! after every operation. Era: a state is the old metadata, the new, or one that every
//! reader refuses as an interrupted run (the in-progress marker in block 0); a state some
//! reader accepts checks clean and dumps as the old or the new metadata. Log: the kernel,
//! reading a state at the next activation, trusts the clean bit of a region only where it
//! would trust it in the old log or in the new one, and, with legs, only where the legs
//! hold the same bytes in that state. The counts go to stderr (`--nocapture`).

mod common;

use std::ops::Range;

use common::log::{clean_bit, set_bit};
use common::Rng;
use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::dump::{dump, DumpOptions};
use era_log_tools::era::repair::repair as era_repair;
use era_log_tools::era::restore::restore as era_restore;
use era_log_tools::identify::{identify, Content, Family, PROBE_BYTES};
use era_log_tools::log::restore::LogSpec;
use era_log_tools::log::resync::Leg;
use era_log_tools::log::run::{repair, restore, Mode, NoProgress, Outcome, RepairOptions};
use era_log_tools::pdata::crash_io::{
    crash_points, Budget, Clock, CrashIo, CrashPoint, Recording, StateCheck, StateIo,
};
use era_log_tools::pdata::io::{BlockIo, MemIo};
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
    if content == Content::EraUnfinished {
        let advice = content.advice(Family::Era).unwrap_or_default();
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
/// `REGIONS` regions (docs/dirty-log-format.md §4.1, §4.2): none with a bad magic or
/// version; below the header's count (truncated to 32 bits), the bit on disk.
fn kernel_clean(log: &[u8]) -> Vec<bool> {
    let valid = log[..4] == MAGIC && matches!(le(&log[4..8]), 1 | 2);
    let old = le(&log[8..16]) & 0xFFFF_FFFF;
    (0..REGIONS)
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
                mode,
                nr_regions: matches!(case, Case::ForceResyncBadMagic | Case::ForceResyncGrow)
                    .then_some(REGIONS as u64),
                // The modes on the mirror's sectors take its geometry from the operator.
                region_size: on_sectors.then_some(2),
                length: on_sectors.then_some(REGIONS as u64 * 2),
                logical_block_size: 512,
                dry_run: false,
                force: case == Case::ForceResyncBadMagic,
                backup: None,
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

/// The log invariant for one crash state of (log, leg 0, leg 1).
fn log_state_ok(imgs: &[Vec<u8>], old: &[u8], new: &[u8]) -> Result<(), String> {
    let log = &imgs[0];
    if log[..16] != old[..16] && log[..16] != new[..16] {
        return Err("a header neither old nor new".into());
    }
    let (now, before, after) = (kernel_clean(log), kernel_clean(old), kernel_clean(new));
    for r in 0..REGIONS {
        if !now[r] {
            continue;
        }
        if !before[r] && !after[r] {
            return Err(format!(
                "the kernel would trust region {r} as clean, which neither the old nor the new \
                 log says"
            ));
        }
        if region(&imgs[1], r) != region(&imgs[2], r) {
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
