//! log_repair and log_restore interrupted at every write: on the kernel's crash log and its
//! two legs, each writing mode runs through devices that fail the k-th write once
//! (`FailOnce`) or stop there like a power cut (`StopAt`), on the log and, for the resync,
//! on leg 1. Whatever k, the run must report an error exactly when a write or flush failed,
//! leave the log either as it was or exactly as the repair means it, write the log only
//! after the legs it copied to are flushed, and never mark a region clean whose copy did not
//! reach leg 1.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::log::{clean_bit, repair_options, set_bit};

use std::ops::Range;
use std::sync::Mutex;

use era_log_tools::log::interrupted::unfinished_repair;
use era_log_tools::log::resync::Leg;
use era_log_tools::log::run::{repair, restore, Mode, NoProgress, Outcome, RepairOptions};
use era_log_tools::log::LogError;
use era_log_tools::pdata::fault_io::{FaultIo, Inject, Op};
use era_log_tools::pdata::io::{ByteIo, MemIo};

/// Sectors per region and regions of the crash mirror (manifest log-crash.json).
const REGION_SECTORS: u64 = 128;
const REGIONS: usize = 512;
const REGION_BYTES: usize = REGION_SECTORS as usize * 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dev {
    Log,
    Leg0,
    Leg1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Write,
    Flush,
}

/// One write or flush as a device answered it, in the order of all devices together.
#[derive(Clone, Copy, Debug)]
struct Event {
    dev: Dev,
    kind: Kind,
    ok: bool,
}

/// A device that notes every write and flush, and whether it succeeded, in a journal shared
/// by all the devices of a run.
struct Traced<'a> {
    dev: Dev,
    inner: &'a dyn ByteIo,
    journal: &'a Mutex<Vec<Event>>,
}

impl Traced<'_> {
    fn note<T>(&self, kind: Kind, r: std::io::Result<T>) -> std::io::Result<T> {
        self.journal.lock().unwrap().push(Event {
            dev: self.dev,
            kind,
            ok: r.is_ok(),
        });
        r
    }
}

impl ByteIo for Traced<'_> {
    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.note(Kind::Write, self.inner.write_at(buf, offset))
    }

    fn sync(&self) -> std::io::Result<()> {
        self.note(Kind::Flush, self.inner.sync())
    }
}

fn region(leg: &[u8], r: usize) -> &[u8] {
    &leg[r * REGION_BYTES..(r + 1) * REGION_BYTES]
}

/// The header {MiRr, 2, nr_regions} in its documented little-endian bytes.
fn header_bytes(nr_regions: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&[0x72, 0x52, 0x69, 0x4D]);
    h[4] = 2;
    h[8..16].copy_from_slice(&nr_regions.to_le_bytes());
    h
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    ForceResync,
    RewriteHeader,
    ClearStrayBits,
    MarkClean,
    Resync,
    Verify,
}

const CASES: [Case; 6] = [
    Case::ForceResync,
    Case::RewriteHeader,
    Case::ClearStrayBits,
    Case::MarkClean,
    Case::Resync,
    Case::Verify,
];

/// The devices of a case before the run, and what the log and leg 1 must hold after a
/// successful one (worked out from the format, not by the code under test).
struct Setup {
    log: Vec<u8>,
    /// Read-only in every mode: one device serves every run.
    leg0: MemIo,
    leg0_bytes: Vec<u8>,
    leg1: Vec<u8>,
    /// Regions dirty in `log`.
    dirty: Vec<usize>,
    expected_log: Vec<u8>,
    expected_leg1: Vec<u8>,
    /// Leg 1 buffers of finished runs, reused: a run writes only the dirty regions (checked
    /// in [`check`]), so restoring those gives `leg1` again without a 32 MiB copy.
    spare: Mutex<Vec<Vec<u8>>>,
}

impl Setup {
    fn fresh_leg1(&self) -> Vec<u8> {
        let Some(mut b) = self.spare.lock().unwrap().pop() else {
            return self.leg1.clone();
        };
        for &r in &self.dirty {
            let at = r * REGION_BYTES..(r + 1) * REGION_BYTES;
            b[at.clone()].copy_from_slice(&self.leg1[at]);
        }
        b
    }

    fn recycle(&self, leg1: Vec<u8>) {
        self.spare.lock().unwrap().push(leg1);
    }
}

fn setup(case: Case) -> Setup {
    let crash = common::fixture("log-crash.log.img.gz");
    let leg0 = common::fixture("log-crash.leg0.img.gz");
    let mut leg1 = common::fixture("log-crash.leg1.img.gz");
    assert_eq!(&crash[..16], &header_bytes(REGIONS as u64));
    assert!(leg0 == leg1, "the crash legs were captured identical");
    let dirty: Vec<usize> = (0..REGIONS).filter(|&r| !clean_bit(&crash, r)).collect();
    // Dirty in the kernel's image: 48..64, 256..320, 384..512.
    let expect_dirty: Vec<usize> = (48..64).chain(256..320).chain(384..512).collect();
    assert_eq!(dirty, expect_dirty);
    let buf_size = 1536;
    let mut log = crash.clone();
    let mut expected_log = crash.clone();
    match case {
        Case::ForceResync => expected_log[1024..1024 + 64].fill(0),
        Case::RewriteHeader => {
            // A bad version: the rewrite restores the kernel's header and keeps the bits.
            log[4] = 3;
        }
        Case::ClearStrayBits => {
            // 500 regions in the header and bits 500..511 set: they are stray.
            log[8..16].copy_from_slice(&500u64.to_le_bytes());
            for r in 500..512 {
                set_bit(&mut log, r, true);
            }
            expected_log = log.clone();
            for r in 500..512 {
                set_bit(&mut expected_log, r, false);
            }
        }
        Case::MarkClean => {
            for r in [48, 49, 60] {
                assert!(!clean_bit(&crash, r));
                set_bit(&mut expected_log, r, true);
            }
        }
        Case::Resync => {
            // Leg 1 differs from leg 0 in every dirty region, as after writes that reached
            // only leg 0; the resync makes it leg 0 again.
            for (i, &r) in dirty.iter().enumerate() {
                leg1[r * REGION_BYTES + (i * 97) % REGION_BYTES] ^= 0x5A;
            }
            expected_log[1024..1024 + 64].fill(0xFF);
        }
        Case::Verify => {
            // One dirty region differs and stays dirty; the others are marked clean.
            leg1[300 * REGION_BYTES + 4096] ^= 0x5A;
            for r in 0..REGIONS {
                set_bit(&mut expected_log, r, r != 300);
            }
        }
    }
    assert!(expected_log[buf_size..] == crash[buf_size..]);
    assert!((0..REGIONS)
        .filter(|r| !dirty.contains(r))
        .all(|r| region(&leg0, r) == region(&leg1, r)));
    let expected_leg1 = if case == Case::Resync {
        leg0.clone()
    } else {
        leg1.clone()
    };
    Setup {
        log,
        leg0: MemIo::from_bytes(leg0.clone()),
        leg0_bytes: leg0,
        leg1,
        dirty,
        expected_log,
        expected_leg1,
        spare: Mutex::new(Vec::new()),
    }
}

/// Where the fault is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Log,
    Leg1,
}

/// What a run did.
struct Run {
    result: Result<Outcome, LogError>,
    log_ops: Vec<Op>,
    leg1_ops: Vec<Op>,
    log: Vec<u8>,
    leg1: Vec<u8>,
    events: Vec<Event>,
}

fn run(s: &Setup, case: Case, target: Target, inject: Inject, dry_run: bool) -> Run {
    let on = |t| if t == target { inject } else { Inject::None };
    let log = FaultIo::new(MemIo::from_bytes(s.log.clone()), on(Target::Log));
    let leg1 = FaultIo::new(MemIo::from_bytes(s.fresh_leg1()), on(Target::Leg1));
    let journal = Mutex::new(Vec::new());
    let (tlog, t0, t1) = (
        Traced {
            dev: Dev::Log,
            inner: &log,
            journal: &journal,
        },
        Traced {
            dev: Dev::Leg0,
            inner: &s.leg0,
            journal: &journal,
        },
        Traced {
            dev: Dev::Leg1,
            inner: &leg1,
            journal: &journal,
        },
    );
    let legs = [
        Leg {
            name: "leg0",
            offset: 0,
            io: &t0,
        },
        Leg {
            name: "leg1",
            offset: 0,
            io: &t1,
        },
    ];
    let mode = match case {
        Case::ForceResync => Mode::ForceResync,
        Case::RewriteHeader => Mode::RewriteHeader,
        Case::ClearStrayBits => Mode::ClearStrayBits,
        Case::MarkClean => Mode::MarkClean(vec![48..50, 60..61]),
        Case::Resync => Mode::Resync(&legs),
        Case::Verify => Mode::Verify(&legs),
    };
    // The modes that work on the mirror's sectors take its geometry from the operator.
    let with_geometry = matches!(case, Case::Resync | Case::Verify | Case::MarkClean);
    let opts = RepairOptions {
        region_size: with_geometry.then_some(REGION_SECTORS),
        length: with_geometry.then_some(REGION_SECTORS * REGIONS as u64),
        dry_run,
        ..repair_options(mode)
    };
    let mut report = Vec::new();
    let result = repair(&tlog, &opts, &mut NoProgress, &mut report);
    let events = journal.lock().unwrap().clone();
    Run {
        result,
        log_ops: log.ops(),
        leg1_ops: leg1.ops(),
        log: log.into_inner().into_bytes(),
        leg1: leg1.into_inner().into_bytes(),
        events,
    }
}

fn writes(ops: &[Op]) -> usize {
    ops.iter().filter(|o| matches!(o, Op::WriteAt(_))).count()
}

/// The checks every run must pass, interrupted or not.
fn check(s: &Setup, case: Case, what: &str, r: &Run, failed: bool) {
    // An error exactly when a write or flush failed, and then the log is untouched.
    match (&r.result, failed) {
        (Ok(Outcome::Written { bytes: 1536 }), false) => {
            assert!(
                r.log == s.expected_log,
                "{what}: the log is not the repair's"
            );
            assert!(
                r.leg1 == s.expected_leg1,
                "{what}: leg 1 is not as expected"
            );
        }
        (Err(_), true) => {
            assert!(r.log == s.log, "{what}: a failed run changed the log");
            said_the_state_it_left(s, what, r);
        }
        (res, _) => panic!("{what}: failed={failed} but the run returned {res:?}"),
    }
    // Leg 0 is never written; only a resync writes leg 1.
    assert!(
        r.events.iter().all(|e| e.dev != Dev::Leg0),
        "{what}: leg 0 was written"
    );
    if case != Case::Resync {
        assert!(r.leg1_ops.is_empty(), "{what}: leg 1 was written");
    }
    // The log: at most one write of the whole buffer at offset 0, a flush only after it.
    assert!(
        r.log_ops.is_empty()
            || r.log_ops == [Op::WriteAt(0)]
            || r.log_ops == [Op::WriteAt(0), Op::Flush],
        "{what}: log ops {:?}",
        r.log_ops
    );
    // Across devices: the log comes last, after every leg succeeded and each leg written
    // to was flushed after its last write.
    if let Some(first) = r.events.iter().position(|e| e.dev == Dev::Log) {
        let (before, after) = r.events.split_at(first);
        assert!(
            after.iter().all(|e| e.dev == Dev::Log),
            "{what}: a leg was written after the log"
        );
        assert!(
            before.iter().all(|e| e.ok),
            "{what}: the log was written although a leg failed"
        );
        for dev in [Dev::Leg0, Dev::Leg1] {
            if let Some(last) = before
                .iter()
                .rposition(|e| e.dev == dev && e.kind == Kind::Write)
            {
                assert!(
                    before[last..]
                        .iter()
                        .any(|e| e.dev == dev && e.kind == Kind::Flush),
                    "{what}: the log was written before {dev:?} was flushed"
                );
            }
        }
    }
    // A region is clean in the log only where leg 1 holds leg 0's data. The regions clean
    // before the run are identical on both legs (see `setup`), and no leg is written there.
    if let Some(o) = r.leg1_ops.iter().find(|o| match o {
        Op::WriteAt(off) => !s.dirty.contains(&(*off as usize / REGION_BYTES)),
        _ => false,
    }) {
        panic!("{what}: leg 1 written outside the dirty regions: {o:?}");
    }
    for &rg in &s.dirty {
        if clean_bit(&r.log, rg) {
            assert!(
                region(&r.leg1, rg) == region(&s.leg0_bytes, rg),
                "{what}: region {rg} is clean but its legs differ"
            );
        }
    }
}

/// What log_repair says after a signal stopped this failed run (counting the writes that
/// completed, as the binary does) must be what the devices hold.
fn said_the_state_it_left(s: &Setup, what: &str, r: &Run) {
    let done = |dev: Dev| {
        r.events
            .iter()
            .filter(|e| e.dev == dev && e.kind == Kind::Write && e.ok)
            .count() as u64
    };
    let said = unfinished_repair(done(Dev::Log), done(Dev::Leg0) + done(Dev::Leg1));
    assert!(said.ends_with("; run the repair again"), "{what}: {said}");
    if said.starts_with("nothing was written") {
        assert!(r.log == s.log && r.leg1 == s.leg1, "{what}: {said}");
    } else if said.starts_with("the log is unchanged; dirty regions were copied") {
        assert!(r.log == s.log, "{what}: {said}");
        // Only the dirty regions were written (checked in `check`): the others are intact.
        assert!(
            (0..REGIONS)
                .filter(|rg| !s.dirty.contains(rg))
                .all(|rg| region(&r.leg1, rg) == region(&s.leg1, rg)),
            "{what}: {said}"
        );
    } else {
        panic!("{what}: the log is unchanged, but the message says: {said}");
    }
}

/// Runs `case` with every `FailOnce(k)` and `StopAt(k)` on `target`, k from 0 to one past
/// the last write of an uninterrupted run; returns how many k were tried per injection.
fn sweep(s: &Setup, case: Case, target: Target) -> usize {
    let clean = run(s, case, target, Inject::None, false);
    let ops = match target {
        Target::Log => &clean.log_ops,
        Target::Leg1 => &clean.leg1_ops,
    };
    let n = writes(ops);
    for k in 0..=n as u64 {
        for inject in [Inject::FailOnce(k), Inject::StopAt(k)] {
            let r = run(s, case, target, inject, false);
            let what = format!("{case:?}, {inject:?} on {target:?}");
            let attempted = match target {
                Target::Log => writes(&r.log_ops),
                Target::Leg1 => writes(&r.leg1_ops),
            };
            // The k-th write failed if the run got that far.
            check(s, case, &what, &r, attempted as u64 > k);
            s.recycle(r.leg1);
        }
    }
    n + 1
}

#[test]
fn every_mode_writes_the_log_once_then_flushes_it() {
    for case in CASES {
        let s = setup(case);
        let r = run(&s, case, Target::Log, Inject::None, false);
        check(&s, case, &format!("{case:?}"), &r, false);
        assert_eq!(r.log_ops, [Op::WriteAt(0), Op::Flush], "{case:?}");
        if case == Case::Resync {
            // Each of the 208 dirty regions (64 KiB, one write each) is copied, then leg 1
            // is flushed once.
            let mut expect = vec![];
            for rg in (48..64).chain(256..320).chain(384..512) {
                expect.push(Op::WriteAt(rg * REGION_BYTES as u64));
            }
            expect.push(Op::Flush);
            assert_eq!(r.leg1_ops, expect);
        }
    }
}

#[test]
fn an_interrupted_log_write_leaves_the_old_log_and_an_error() {
    for case in CASES {
        let s = setup(case);
        // One write: k = 0 fails it, k = 1 is past the end and lets it through.
        assert_eq!(sweep(&s, case, Target::Log), 2, "{case:?}");
    }
}

#[test]
fn an_interrupted_resync_never_marks_a_region_clean_that_leg_1_did_not_get() {
    let s = setup(Case::Resync);
    assert_eq!(sweep(&s, Case::Resync, Target::Leg1), 209);
}

#[test]
fn a_dry_run_writes_no_device() {
    for case in CASES {
        let s = setup(case);
        let r = run(&s, case, Target::Log, Inject::StopAt(0), true);
        assert!(matches!(r.result, Ok(Outcome::DryRun)), "{case:?}");
        assert!(r.events.is_empty(), "{case:?}: {:?}", r.events);
        assert!(r.log == s.log && r.leg1 == s.leg1, "{case:?}");
    }
}

#[test]
fn an_interrupted_restore_leaves_the_old_log_and_an_error() {
    use era_log_tools::log::restore::LogSpec;
    let old = common::fixture("log-crash.log.img.gz");
    // Every region dirty but 0..48 and 64..256, as the XML would say.
    let dirty: Vec<Range<u64>> = vec![48..64, 256..512];
    let spec = LogSpec {
        version: 2,
        nr_regions: 512,
        regions: 512,
        dirty,
    };
    let mut expected = old.clone();
    expected[1024 + 40..1024 + 48].fill(0);
    for inject in [
        Inject::None,
        Inject::FailOnce(0),
        Inject::StopAt(0),
        Inject::StopAt(1),
    ] {
        let io = FaultIo::new(MemIo::from_bytes(old.clone()), inject);
        let result = restore(&io, &spec, 512, false);
        let ops = io.ops();
        let after = io.into_inner().into_bytes();
        if matches!(inject, Inject::FailOnce(0) | Inject::StopAt(0)) {
            assert!(result.is_err(), "{inject:?}");
            assert_eq!(ops, [Op::WriteAt(0)], "{inject:?}");
            assert!(after == old, "{inject:?}");
        } else {
            assert_eq!(result.unwrap(), 1536, "{inject:?}");
            assert_eq!(ops, [Op::WriteAt(0), Op::Flush], "{inject:?}");
            assert!(after == expected, "{inject:?}");
        }
    }
}
