//! The session against the mock device-mapper, reading a kernel-written image that holds a
//! metadata snapshot (era-snap-held: 1024 blocks of 128 sectors, snapshot root 413 taken in
//! era 2, so the snapshot's era is 3).

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::dm::mock::{MockDm, MockEra};
use crate::pdata::io::MemIo;

const ROOT: u64 = 413;

fn image() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kernel/era-snap-held.live-snap-held.img.gz");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The target as it was before the fixture's snapshot: era 2 current (era 1 before the
/// checkpoint a session sends).
fn target(era: u32) -> MockDm {
    let mut s = MockEra::new(131072, 128, era);
    s.next_root = ROOT;
    MockDm::new(s)
}

fn opener(_: DevId) -> Result<(PathBuf, Box<dyn BlockIo>), LiveFault> {
    Ok(("/dev/meta".into(), Box::new(MemIo::from_bytes(image()))))
}

fn dev() -> DmDevice {
    DmDevice::Name("e".into())
}

fn opts(checkpoint: bool, use_held: bool) -> LiveOptions {
    LiveOptions {
        checkpoint,
        use_held_snapshot: use_held,
        handle_signals: false,
    }
}

fn since(
    n: u32,
) -> impl FnOnce(&dyn BlockIo, &SessionInfo) -> Result<Vec<(u64, u64)>, crate::pdata::error::Error>
{
    move |io, _| {
        let view = View::open(io, true)?;
        Ok(written_since(io, &view, n)?.runs().collect())
    }
}

#[test]
fn checkpoint_take_read_drop() {
    let dm = target(1);
    let (runs, info) = run_with(&dm, &dev(), &opts(true, false), &opener, since(1)).unwrap();
    // The kernel's answer for this snapshot (the fixture's manifest).
    assert_eq!(runs, vec![(0, 96)]);
    assert_eq!(
        dm.messages(),
        ["checkpoint", "take_metadata_snap", "drop_metadata_snap"]
    );
    assert_eq!(dm.state.lock().unwrap().held, None);
    assert_eq!(
        info.era, 2,
        "the era on the status line after the checkpoint"
    );
    assert_eq!(info.snapshot_era, 3);
    assert_eq!(info.next_written_since(), 3);
    assert_eq!((info.snapshot_root, info.snapshot_taken), (ROOT, true));
    assert_eq!(info.snapshot_nr_blocks, 1024);
    assert_eq!(info.table.nr_blocks(), 1024);
    assert_eq!(info.metadata_dev, PathBuf::from("/dev/meta"));
}

#[test]
fn without_checkpoint_the_era_is_the_one_before_the_snapshot() {
    let dm = target(2);
    let (runs, info) = run_with(&dm, &dev(), &opts(false, false), &opener, since(2)).unwrap();
    assert_eq!(runs, vec![(64, 96)]);
    assert_eq!(dm.messages(), ["take_metadata_snap", "drop_metadata_snap"]);
    assert_eq!((info.era, info.snapshot_era), (2, 3));
}

#[test]
fn a_checkpoint_that_keeps_the_era_is_read_from_the_status_line() {
    let dm = target(2);
    dm.state.lock().unwrap().checkpoint_advances = false;
    let (_, info) = run_with(&dm, &dev(), &opts(true, false), &opener, since(1)).unwrap();
    assert_eq!(info.era, 2);
    assert_eq!(info.next_written_since(), 3, "from the snapshot itself");
}

#[test]
fn a_snapshot_held_by_someone_else_is_refused_and_left_alone() {
    let dm = target(3);
    dm.state.lock().unwrap().held = Some(ROOT);
    let e = run_with(&dm, &dev(), &opts(true, false), &opener, since(1)).unwrap_err();
    assert!(matches!(e.fault, LiveFault::SnapshotHeld(ROOT)), "{e}");
    assert!(
        e.to_string()
            .starts_with("e: a metadata snapshot is already held (root 413)"),
        "{e}"
    );
    assert!(dm.messages().is_empty());
    assert_eq!(dm.state.lock().unwrap().held, Some(ROOT));
}

#[test]
fn a_held_snapshot_is_read_and_left_held_when_asked() {
    let dm = target(3);
    dm.state.lock().unwrap().held = Some(ROOT);
    let (runs, info) = run_with(&dm, &dev(), &opts(false, true), &opener, since(2)).unwrap();
    assert_eq!(runs, vec![(64, 96)]);
    assert!(dm.messages().is_empty());
    assert_eq!(dm.state.lock().unwrap().held, Some(ROOT));
    assert!(!info.snapshot_taken);
    let e = run_with(&dm, &dev(), &opts(true, true), &opener, since(2)).unwrap_err();
    assert!(
        matches!(e.fault, LiveFault::CheckpointWithHeld(ROOT)),
        "{e}"
    );
    assert!(dm.messages().is_empty());
}

#[test]
fn a_use_held_session_with_nothing_held_takes_and_drops_its_own() {
    let dm = target(2);
    run_with(&dm, &dev(), &opts(false, true), &opener, since(1)).unwrap();
    assert_eq!(dm.messages(), ["take_metadata_snap", "drop_metadata_snap"]);
}

#[test]
fn a_failed_read_still_drops_the_snapshot() {
    let dm = target(2);
    let e = run_with(&dm, &dev(), &opts(false, false), &opener, |_, _| {
        Err::<(), _>(io::Error::other("disk on fire"))
    })
    .unwrap_err();
    assert_eq!(e.to_string(), "e: disk on fire");
    assert_eq!(dm.messages(), ["take_metadata_snap", "drop_metadata_snap"]);
    assert_eq!(dm.state.lock().unwrap().held, None);
}

#[test]
fn a_panicking_reader_still_drops_the_snapshot() {
    let dm = target(2);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = run_with(&dm, &dev(), &opts(false, false), &opener, |_, _| {
            if true {
                panic!("reader bug");
            }
            Ok::<(), io::Error>(())
        });
    }));
    assert!(r.is_err());
    assert_eq!(dm.messages(), ["take_metadata_snap", "drop_metadata_snap"]);
}

#[test]
fn refusals_come_before_any_message() {
    let dm = target(2);
    dm.state.lock().unwrap().suspended = true;
    let e = run_with(&dm, &dev(), &opts(true, false), &opener, since(1)).unwrap_err();
    assert!(matches!(e.fault, LiveFault::Suspended), "{e}");
    assert_eq!(dm.requests(), ["info"], "no status: it would hang");

    let dm = target(2);
    dm.state.lock().unwrap().exists = false;
    let e = run_with(&dm, &dev(), &opts(true, false), &opener, since(1)).unwrap_err();
    assert_eq!(e.to_string(), "e: no such device-mapper device");

    let dm = target(2);
    {
        let mut s = dm.state.lock().unwrap();
        let t = s.table.as_mut().unwrap();
        t.target_type = "linear".into();
        t.params = "253:0 0".into();
    }
    let e = run_with(&dm, &dev(), &opts(true, false), &opener, since(1)).unwrap_err();
    assert_eq!(e.to_string(), "e: the target is 'linear', not 'era'");
    assert!(dm.messages().is_empty());

    let dm = target(2);
    dm.state.lock().unwrap().table = None;
    let e = run_with(&dm, &dev(), &opts(true, false), &opener, since(1)).unwrap_err();
    assert!(e.to_string().contains("no table"), "{e}");

    let dm = target(2);
    dm.fail_on("info", libc::EACCES);
    let e = run_with(&dm, &dev(), &opts(true, false), &opener, since(1)).unwrap_err();
    assert!(e.to_string().contains("Permission denied"), "{e}");

    let dm = target(2);
    let no_node = |d: DevId| -> Result<(PathBuf, Box<dyn BlockIo>), LiveFault> {
        Err(LiveFault::Node(NodeError::NoNode(d)))
    };
    let e = run_with(&dm, &dev(), &opts(true, false), &no_node, since(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "e: no device node found for the metadata device 253:0"
    );
    assert!(dm.messages().is_empty());
}

#[test]
fn a_failed_drop_is_reported_with_what_to_do() {
    let dm = target(2);
    dm.fail_on("drop_metadata_snap", libc::EIO);
    let e = run_with(&dm, &dev(), &opts(false, false), &opener, since(1)).unwrap_err();
    assert!(matches!(e.fault, LiveFault::Drop(ROOT, _)), "{e}");
    assert!(
        e.to_string().contains("drop it with dmsetup message"),
        "{e}"
    );
}

#[test]
fn a_snapshot_dropped_under_the_reader_makes_the_result_untrusted() {
    let dm = target(2);
    let e = run_with(&dm, &dev(), &opts(false, false), &opener, |_, _| {
        // Someone else drops it and takes their own while we read.
        let mut s = dm.state.lock().unwrap();
        s.held = Some(7);
        Ok::<_, io::Error>(())
    })
    .unwrap_err();
    assert!(matches!(e.fault, LiveFault::SnapshotLost(ROOT)), "{e}");
    assert_eq!(
        dm.messages(),
        ["take_metadata_snap"],
        "theirs is left alone"
    );
    assert_eq!(dm.state.lock().unwrap().held, Some(7));
}

#[test]
fn the_status_root_must_be_the_superblocks() {
    let dm = target(2);
    dm.state.lock().unwrap().next_root = 999;
    let e = run_with(&dm, &dev(), &opts(false, false), &opener, since(1)).unwrap_err();
    assert!(matches!(e.fault, LiveFault::Mismatch(_)), "{e}");
    assert!(e.to_string().contains("snapshot 999 held"), "{e}");
    assert!(e.to_string().contains("records 413"), "{e}");
    assert_eq!(dm.messages(), ["take_metadata_snap", "drop_metadata_snap"]);
}

#[test]
fn the_table_block_size_must_be_the_metadatas() {
    let dm = MockDm::new(MockEra {
        next_root: ROOT,
        ..MockEra::new(131072, 64, 2)
    });
    let e = run_with(&dm, &dev(), &opts(false, false), &opener, since(1)).unwrap_err();
    assert!(
        e.to_string()
            .contains("block size is 64 sectors, the metadata's 128"),
        "{e}"
    );
    assert_eq!(dm.messages(), ["take_metadata_snap", "drop_metadata_snap"]);
}

#[test]
fn a_signal_stops_the_reads_and_the_snapshot_is_dropped() {
    let _turn = crate::interrupt::TestTurn::take();
    let dm = target(2);
    let sent = AtomicBool::new(false);
    let o = LiveOptions {
        handle_signals: true,
        ..opts(false, false)
    };
    let e = run_with(&dm, &dev(), &o, &opener, |io, _| {
        io.read_new(0)?;
        // What the signal thread of a tool does when SIGHUP comes.
        crate::interrupt::on_signal(libc::SIGHUP);
        sent.store(true, Ordering::SeqCst);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            io.read_new(1)?;
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok::<(), io::Error>(())
    })
    .unwrap_err();
    assert!(sent.load(Ordering::SeqCst));
    assert_eq!(
        e.to_string(),
        "e: interrupted by SIGHUP; metadata snapshot 413 dropped"
    );
    assert_eq!(dm.messages(), ["take_metadata_snap", "drop_metadata_snap"]);
}

#[test]
fn a_read_that_panics_under_a_signal_watch_does_not_hang_the_session() {
    let _turn = crate::interrupt::TestTurn::take();
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let dm = target(2);
        let o = LiveOptions {
            handle_signals: true,
            ..opts(false, false)
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_with(&dm, &dev(), &o, &opener, |_, _| -> Result<(), io::Error> {
                panic!("a bug in the reader")
            })
        }));
        let _ = done.send(r.is_err());
    });
    let panicked = ended.recv_timeout(Duration::from_secs(20));
    assert_eq!(
        panicked,
        Ok(true),
        "the session hung or did not pass the panic on"
    );
}
