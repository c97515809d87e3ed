//! era_restore and era_repair interrupted at every write, through a fault-injecting device:
//! the output either holds the complete new metadata, or no superblock any reader accepts.
//! Never valid-looking but wrong data.

mod common;

use common::*;
use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::dump::{dump, DumpOptions};
use era_log_tools::era::format::BUILD_IN_PROGRESS;
use era_log_tools::era::repair::repair;
use era_log_tools::era::restore::restore;
use era_log_tools::pdata::fault_io::{FaultIo, Inject, Op};
use era_log_tools::pdata::io::{BlockIo, MemIo};
use era_log_tools::pdata::report::Severity;

const SOURCES: [&str; 3] = [
    "era-basic.meta.img.gz",
    "era-odd.meta.img.gz",
    "era-snap-held.removed-snap-held.img.gz",
];

fn xml_of(io: &dyn BlockIo) -> Vec<u8> {
    let mut out = Vec::new();
    dump(io, &DumpOptions::default(), &mut out).expect("dump");
    out
}

fn is_clean(io: &dyn BlockIo) -> bool {
    check(io, CheckOptions::default()).worst() < Some(Severity::Warning)
}

/// What an interrupted writer left: its previous content untouched, or nothing a reader
/// accepts, with the marker in block 0.
fn assert_previous_or_refused(io: MemIo, before: &[u8], what: &str) {
    let after = io.into_bytes();
    if after == before {
        return;
    }
    let io = MemIo::from_bytes(after);
    let io: &dyn BlockIo = &io;
    let p = check(io, CheckOptions::default());
    let first = p.kept().first().map(|p| p.to_string()).unwrap_or_default();
    assert!(
        first.contains("superblock at block 0"),
        "{what}: an interrupted write left metadata that reads: {first:?}"
    );
    let b0 = io.read_new(0).unwrap();
    assert_eq!(&b0[..BUILD_IN_PROGRESS.len()], BUILD_IN_PROGRESS, "{what}");
}

/// The write order every build must follow: block 0 invalidated and flushed first, the
/// superblock written last between two flushes.
fn assert_order(ops: &[Op], what: &str) {
    assert_eq!(&ops[..2], &[Op::Write(0), Op::Flush], "{what}: {ops:?}");
    let n = ops.len();
    assert_eq!(
        &ops[n - 3..],
        &[Op::Flush, Op::Write(0), Op::Flush],
        "{what}: superblock last, after a flush"
    );
    let zeros = ops.iter().filter(|o| **o == Op::Write(0)).count();
    assert_eq!(zeros, 2, "{what}");
}

/// Runs `write` into a copy of `before` through `inject`; returns the device and the ops.
fn attempt(
    before: &[u8],
    inject: Inject,
    write: &dyn Fn(&dyn BlockIo) -> bool,
) -> (MemIo, Vec<Op>, bool) {
    let io = FaultIo::new(MemIo::from_bytes(before.to_vec()), inject);
    let ok = write(&io);
    let ops = io.ops();
    (io.into_inner(), ops, ok)
}

fn exercise(name: &str, write: &dyn Fn(&dyn BlockIo) -> bool, expected_xml: &[u8], size: usize) {
    // The output starts out holding other valid metadata, or nothing.
    let previous = fixture("era-snap-held.meta.img.gz");
    for before in [previous[..size].to_vec(), vec![0u8; size]] {
        let (done, ops, ok) = attempt(&before, Inject::None, write);
        assert!(ok, "{name}: fault-free run");
        assert_order(&ops, name);
        assert_eq!(xml_of(&done), expected_xml, "{name}: fault-free result");
        assert!(is_clean(&done), "{name}");
        let writes = ops.iter().filter(|o| matches!(o, Op::Write(_))).count() as u64;
        for k in 0..writes {
            for inject in [Inject::StopAt(k), Inject::FailOnce(k)] {
                let what = format!("{name} with {inject:?} of {writes} writes");
                let (io, _, ok) = attempt(&before, inject, write);
                assert!(!ok, "{what}: a failed write must fail the run");
                assert_previous_or_refused(io, &before, &what);
            }
        }
    }
}

#[test]
fn restore_interrupted_at_every_write() {
    for src in SOURCES {
        let img = fixture(src);
        let xml = xml_of(&MemIo::from_bytes(img.clone()));
        let input = xml.clone();
        let write = move |io: &dyn BlockIo| {
            restore(Box::new(std::io::Cursor::new(input.clone())), io, &|_| {}).is_ok()
        };
        exercise(src, &write, &xml, img.len());
    }
}

#[test]
fn repair_interrupted_at_every_write() {
    for src in SOURCES {
        let img = fixture(src);
        let xml = xml_of(&MemIo::from_bytes(img.clone()));
        let input = MemIo::from_bytes(img.clone());
        let write = move |io: &dyn BlockIo| repair(&input, io).is_ok();
        exercise(src, &write, &xml, img.len());
    }
}

/// A write that fails is the output's error, wherever it happens: while the input streams
/// into the new metadata as well as when it is finished (an era_repair onto a full
/// filesystem named its input).
#[test]
fn a_failed_write_of_era_repair_is_the_outputs() {
    use era_log_tools::pdata::error::{Side, Sided};
    let img = fixture(SOURCES[0]);
    let input = MemIo::from_bytes(img.clone());
    let mut writes = 0;
    loop {
        let out = FaultIo::new(
            MemIo::new(img.len() as u64 / 4096),
            Inject::FailOnce(writes),
        );
        match repair(&input, &out) {
            Ok(_) => break,
            Err(e) => assert_eq!(e.side(), Side::Output, "write {writes}: {e}"),
        }
        writes += 1;
    }
    assert!(writes > 2, "{writes}");
}
