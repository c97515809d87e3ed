// Tests give written blocks as lists of ranges, often of one.
#![allow(clippy::single_range_in_vec_init)]

use std::sync::Mutex;

use super::*;
use crate::cache::example::Synthetic;
use crate::cache::format::superblock::CLEAN_SHUTDOWN;
use crate::dm::{DeviceInfo, TargetLine};
use crate::pdata::io::MemIo;

const CACHE: DevId = DevId {
    major: 254,
    minor: 5,
};

/// The era target the cache is stacked with: 254:3 on the origin 254:0.
fn era() -> Neighbour {
    Neighbour {
        name: "era0".into(),
        dev: DevId {
            major: 254,
            minor: 3,
        },
        origin: DevId {
            major: 254,
            minor: 0,
        },
    }
}

#[derive(Clone)]
struct State {
    suspended: bool,
    inactive: bool,
    mode: &'static str,
    read_only: bool,
    needs_check: bool,
    dirty: u64,
    /// The cache's origin in its table.
    origin: DevId,
    block_size: u32,
    /// The block size the metadata records (the table's unless a test says otherwise).
    metadata_block_size: u32,
    /// Cache block `c` holds origin block `map[c]`.
    map: Vec<Option<u64>>,
    /// Whether invalidate_cblocks removes mappings (a kernel that says yes and does not).
    honours_invalidate: bool,
    /// The mode of a table someone loaded and did not resume: the next resume makes it live.
    loaded: Option<&'static str>,
    /// The mode of a table someone loads and resumes just before the next message.
    reload_before_message: Option<&'static str>,
    /// The metadata's writes fail from the first message on: the kernel's next commit (its
    /// worker's, just after the message) fails, and it goes read-only with needs_check.
    writes_fail_at_message: bool,
}

/// A device-mapper holding one cache target, named `c`, that behaves as the kernel's does as
/// far as an invalidation can see: its suspend commits the mapping to the metadata image
/// (unless the metadata is read-only), `invalidate_cblocks` works in passthrough mode only,
/// and not at all with read-only metadata. Every request is logged; one can be
/// made to fail.
struct MockCache {
    st: Mutex<State>,
    log: Mutex<Vec<String>>,
    fail: Mutex<Option<(String, i32)>>,
    image: Mutex<Vec<u8>>,
}

impl MockCache {
    /// A passthrough cache of blocks of 64 sectors over the era target.
    fn new(map: Vec<Option<u64>>) -> MockCache {
        MockCache {
            st: Mutex::new(State {
                suspended: false,
                inactive: false,
                mode: "passthrough",
                read_only: false,
                needs_check: false,
                dirty: 0,
                origin: era().dev,
                block_size: 64,
                metadata_block_size: 64,
                map,
                honours_invalidate: true,
                loaded: None,
                reload_before_message: None,
                writes_fail_at_message: false,
            }),
            log: Mutex::new(Vec::new()),
            fail: Mutex::new(None),
            image: Mutex::new(Vec::new()),
        }
    }

    fn set(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.st.lock().unwrap());
    }

    fn state(&self) -> State {
        self.st.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn fail_on(&self, request: &str, errno: i32) {
        *self.fail.lock().unwrap() = Some((request.to_string(), errno));
    }

    fn enter(&self, request: &str) -> Result<State, DmError> {
        self.log.lock().unwrap().push(request.to_string());
        if let Some((r, errno)) = &*self.fail.lock().unwrap() {
            if request.starts_with(r.as_str()) {
                return Err(DmError::Request {
                    what: request.to_string(),
                    errno: *errno,
                });
            }
        }
        Ok(self.state())
    }

    /// What a suspend commits.
    fn commit(&self, s: &State) {
        let synthetic = Synthetic {
            version: 2,
            flags: CLEAN_SHUTDOWN,
            data_block_size: s.metadata_block_size,
            cache_blocks: u32::try_from(s.map.len()).unwrap(),
            origin_sectors: None,
        };
        let io = MemIo::new(64);
        synthetic
            .write(&io, &|c| s.map[crate::cast::index(c)].map(|o| (o, false)))
            .unwrap();
        *self.image.lock().unwrap() = io.into_bytes();
    }

    fn open(
        &self,
    ) -> impl Fn(DevId) -> Result<(PathBuf, Box<dyn BlockIo + Send + Sync>), CacheFault> + '_ {
        move |dev| {
            assert_eq!(dev, DevId::parse("254:1").unwrap());
            assert!(
                self.state().suspended,
                "the mapping is read while suspended"
            );
            let io = MemIo::from_bytes(self.image.lock().unwrap().clone());
            Ok((PathBuf::from("/dev/cmeta"), Box::new(io)))
        }
    }
}

impl DeviceMapper for MockCache {
    fn info(&self, _: &DmDevice) -> Result<DeviceInfo, DmError> {
        let s = self.enter("info")?;
        Ok(DeviceInfo {
            dev: CACHE,
            suspended: s.suspended,
            active_table: true,
            inactive_table: s.inactive || s.loaded.is_some(),
            target_count: 1,
        })
    }

    fn table(&self, _: &DmDevice) -> Result<Vec<TargetLine>, DmError> {
        let s = self.enter("table")?;
        Ok(vec![TargetLine {
            start: 0,
            length: 1 << 20,
            target_type: "cache".into(),
            params: format!(
                "254:1 254:2 {} {} 1 {} smq 0",
                s.origin, s.block_size, s.mode
            ),
        }])
    }

    fn status(&self, _: &DmDevice) -> Result<Vec<TargetLine>, DmError> {
        let s = self.enter("status")?;
        let cached = s.map.iter().flatten().count();
        let mode = if s.read_only { "ro" } else { "rw" };
        let check = if s.needs_check { "needs_check" } else { "-" };
        Ok(vec![TargetLine {
            start: 0,
            length: 1 << 20,
            target_type: "cache".into(),
            params: format!(
                "8 27/4096 {} {cached}/{} 0 0 0 0 0 0 {} 1 {} 2 migration_threshold 2048 \
                 smq 0 {mode} {check} ",
                s.block_size,
                s.map.len(),
                s.dirty,
                s.mode
            ),
        }])
    }

    fn message(&self, _: &DmDevice, sector: u64, message: &str) -> Result<(), DmError> {
        let reload = self.st.lock().unwrap().reload_before_message.take();
        if let Some(mode) = reload {
            self.set(|s| s.mode = mode);
        }
        let s = self.enter(message)?;
        assert_eq!(sector, 0);
        let refuse = |errno| {
            Err(DmError::Request {
                what: format!("message '{message}'"),
                errno,
            })
        };
        if s.read_only {
            return refuse(libc::EOPNOTSUPP);
        }
        if s.mode != "passthrough" {
            return refuse(libc::EPERM);
        }
        let mut words = message.split(' ');
        assert_eq!(words.next(), Some("invalidate_cblocks"));
        let mut st = self.st.lock().unwrap();
        for w in words {
            let (b, e) = match w.split_once('-') {
                Some((b, e)) => (b.parse::<usize>().unwrap(), e.parse::<usize>().unwrap()),
                None => (w.parse::<usize>().unwrap(), w.parse::<usize>().unwrap() + 1),
            };
            if b >= e || e > st.map.len() {
                return refuse(libc::EINVAL);
            }
            if st.honours_invalidate {
                st.map[b..e].fill(None);
            }
        }
        if st.writes_fail_at_message {
            // The commit fails; the kernel aborts the transaction and flags the metadata.
            st.read_only = true;
            st.needs_check = true;
        }
        Ok(())
    }

    fn suspend(&self, _: &DmDevice) -> Result<(), DmError> {
        let s = self.enter("suspend")?;
        if !s.read_only {
            self.commit(&s);
        }
        self.st.lock().unwrap().suspended = true;
        Ok(())
    }

    fn resume(&self, _: &DmDevice) -> Result<(), DmError> {
        self.enter("resume")?;
        let mut s = self.st.lock().unwrap();
        if let Some(mode) = s.loaded.take() {
            s.mode = mode;
        }
        s.suspended = false;
        Ok(())
    }
}

/// Era blocks of 32 sectors written, as origin sector ranges.
fn written(
    blocks: &[std::ops::Range<u64>],
) -> impl Fn(&mut Matcher<'_>) -> Result<(), CacheError> + '_ {
    move |m| {
        for r in blocks {
            m.written(r.start * 32..r.end * 32)?;
        }
        Ok(())
    }
}

fn run(
    dm: &MockCache,
    opts: CacheOptions,
    blocks: &[std::ops::Range<u64>],
) -> Result<Outcome, CacheLiveError> {
    let dev = DmDevice::Name("c".into());
    let cache = LiveCache::inspect(dm, &dev, &era())?;
    cache.invalidate(dm, &era(), &opts, &dm.open(), &written(blocks))
}

/// The requests that change something: suspends, resumes and messages.
fn changes(dm: &MockCache) -> Vec<String> {
    dm.requests()
        .into_iter()
        .filter(|r| !matches!(r.as_str(), "info" | "table" | "status"))
        .collect()
}

#[test]
fn the_blocks_holding_written_sectors_are_invalidated_and_the_rest_stay() {
    // Cache blocks of 64 sectors: 0 holds origin block 10, 1 holds 3, 2 nothing, 3 holds 4,
    // 4 holds 11, 5 holds 700.
    let dm = MockCache::new(vec![Some(10), Some(3), None, Some(4), Some(11), Some(700)]);
    // Era blocks of 32 sectors: 7 (the second half of origin block 3), 20..23 (origin
    // blocks 10 and the first half of 11), 300 (origin block 150, not cached).
    let o = run(&dm, CacheOptions::default(), &[7..8, 20..23, 300..301]).unwrap();
    let ranges: Vec<_> = o.invalidation.ranges().collect();
    assert_eq!(ranges, [0..2, 4..5]);
    assert_eq!(o.invalidation.not_cached_blocks(), 1);
    assert_eq!(o.messages, 1);
    assert_eq!(dm.state().map, [None, None, None, Some(4), None, Some(700)]);
    // Read suspended, messages resumed, then a suspend that commits them and a read that
    // shows them gone; the cache is left resumed.
    assert_eq!(
        changes(&dm),
        [
            "suspend",
            "resume",
            "invalidate_cblocks 0-2 4",
            "suspend",
            "resume"
        ]
    );
    assert!(!dm.state().suspended);
}

#[test]
fn a_dry_run_reads_and_matches_and_sends_nothing() {
    let dm = MockCache::new(vec![Some(10), Some(3)]);
    let opts = CacheOptions {
        dry_run: true,
        ..CacheOptions::default()
    };
    let o = run(&dm, opts, &[20..21]).unwrap();
    assert_eq!(o.invalidation.ranges().collect::<Vec<_>>(), [0..1]);
    assert_eq!(o.messages, 0);
    assert_eq!(changes(&dm), ["suspend", "resume"]);
    assert_eq!(dm.state().map, [Some(10), Some(3)]);
}

#[test]
fn nothing_cached_that_was_written_sends_no_message() {
    let dm = MockCache::new(vec![Some(10), None]);
    let o = run(&dm, CacheOptions::default(), &[0..4]).unwrap();
    assert_eq!(o.invalidation.count(), 0);
    assert_eq!(o.messages, 0);
    assert_eq!(changes(&dm), ["suspend", "resume", "suspend", "resume"]);
}

#[test]
fn more_ranges_than_a_message_takes_go_in_batches() {
    // Every other cache block holds a written origin block: 1500 separate ranges.
    let map: Vec<Option<u64>> = (0..3000).map(Some).collect();
    let dm = MockCache::new(map);
    let blocks: Vec<_> = (0..1500).map(|i| 4 * i..4 * i + 1).collect();
    let o = run(&dm, CacheOptions::default(), &blocks).unwrap();
    assert_eq!((o.invalidation.count(), o.messages), (1500, 2));
    let sent: Vec<usize> = changes(&dm)
        .iter()
        .filter(|r| r.starts_with("invalidate_cblocks"))
        .map(|r| r.split(' ').count() - 1)
        .collect();
    assert_eq!(sent, [1000, 500]);
    assert!(dm.state().map.iter().step_by(2).all(Option::is_none));
    assert!(dm
        .state()
        .map
        .iter()
        .skip(1)
        .step_by(2)
        .all(Option::is_some));
}

#[test]
fn a_cache_under_the_era_target_is_stacked_too() {
    let dm = MockCache::new(vec![Some(0)]);
    // The era target's origin is the cache; the cache's origin some disk.
    dm.set(|s| s.origin = DevId::parse("8:16").unwrap());
    let under = Neighbour {
        origin: CACHE,
        ..era()
    };
    let dev = DmDevice::Name("c".into());
    let cache = LiveCache::inspect(&dm, &dev, &under).unwrap();
    assert_eq!(cache.stacking, Stacking::CacheUnder);
    let over = LiveCache::inspect(&MockCache::new(vec![]), &dev, &era()).unwrap();
    assert_eq!(over.stacking, Stacking::CacheOver);
}

/// Each refusal: its words, and nothing suspended or sent.
#[test]
fn a_cache_that_cannot_be_invalidated_is_refused_untouched() {
    type Change = Box<dyn Fn(&mut State)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "in writeback mode; the kernel invalidates cache blocks only in passthrough mode: \
             write back its dirty blocks until dmsetup status c counts none (12 now), reload \
             its table with passthrough instead of writeback, and resume it",
            Box::new(|s| {
                s.mode = "writeback";
                s.dirty = 12;
            }),
        ),
        (
            "in writethrough mode",
            Box::new(|s| s.mode = "writethrough"),
        ),
        (
            "read-only ('ro' in dmsetup status c)",
            Box::new(|s| s.read_only = true),
        ),
        ("flagged needs_check", Box::new(|s| s.needs_check = true)),
        ("the cache is suspended", Box::new(|s| s.suspended = true)),
        (
            "a table is loaded and not yet live (dmsetup table --inactive c)",
            Box::new(|s| s.inactive = true),
        ),
        (
            "the cache (254:5, origin 8:16) and era0 (254:3, origin 254:0) are not stacked \
             directly on each other",
            Box::new(|s| s.origin = DevId::parse("8:16").unwrap()),
        ),
    ];
    for (words, change) in cases {
        let dm = MockCache::new(vec![Some(0)]);
        dm.set(|s| change(s));
        let e = run(&dm, CacheOptions::default(), &[0..2]).unwrap_err();
        assert!(e.what().contains(words), "{words}: {e}");
        assert!(e.to_string().starts_with("c: "), "{e}");
        assert_eq!(changes(&dm), Vec::<String>::new(), "{words}");
    }
}

#[test]
fn a_refused_message_leaves_the_cache_resumed_and_says_how_far_it_got() {
    let dm = MockCache::new(vec![Some(0), Some(1)]);
    dm.fail_on("invalidate_cblocks", libc::EINVAL);
    let e = run(&dm, CacheOptions::default(), &[0..4]).unwrap_err();
    assert_eq!(
        e.what(),
        "invalidate_cblocks refused after 0 of 1 messages: Invalid argument (os error 22); \
         the cache is still in passthrough mode, run again"
    );
    assert!(!dm.state().suspended);
}

#[test]
fn blocks_still_cached_after_the_messages_are_an_error() {
    let dm = MockCache::new(vec![Some(0), Some(1), Some(5)]);
    dm.set(|s| s.honours_invalidate = false);
    let e = run(&dm, CacheOptions::default(), &[0..4]).unwrap_err();
    assert!(
        e.what()
            .starts_with("2 cache blocks still hold written blocks"),
        "{e}"
    );
    assert!(!dm.state().suspended);
}

#[test]
fn metadata_that_disagrees_with_the_table_is_refused_and_the_cache_resumed() {
    let dm = MockCache::new(vec![Some(0)]);
    dm.set(|s| s.metadata_block_size = 128);
    let e = run(&dm, CacheOptions::default(), &[0..4]).unwrap_err();
    assert!(e.what().contains("block size is 64 sectors"), "{e}");
    assert_eq!(changes(&dm), ["suspend", "resume"]);
}

#[test]
fn a_failed_suspend_changes_nothing_and_a_failed_resume_says_what_to_type() {
    let dm = MockCache::new(vec![Some(0)]);
    dm.fail_on("suspend", libc::EIO);
    let e = run(&dm, CacheOptions::default(), &[0..4]).unwrap_err();
    assert!(e.what().contains("refused suspend"), "{e}");
    assert_eq!(changes(&dm), ["suspend"]);

    let dm = MockCache::new(vec![Some(0)]);
    dm.fail_on("resume", libc::EIO);
    let e = run(&dm, CacheOptions::default(), &[0..4]).unwrap_err();
    assert!(
        e.what().starts_with("could not resume the cache: ")
            && e.what().ends_with("resume it with dmsetup resume c"),
        "{e}"
    );
}

#[test]
fn a_panic_while_suspended_resumes_the_cache() {
    let dm = MockCache::new(vec![Some(0)]);
    let dev = DmDevice::Name("c".into());
    let cache = LiveCache::inspect(&dm, &dev, &era()).unwrap();
    let feed = |_: &mut Matcher<'_>| -> Result<(), CacheError> { panic!("a bug") };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.invalidate(&dm, &era(), &CacheOptions::default(), &dm.open(), &feed)
    }));
    assert!(r.is_err());
    assert!(!dm.state().suspended);
    assert_eq!(changes(&dm), ["suspend", "resume"]);
}

#[test]
fn a_signal_while_suspended_resumes_the_cache_and_sends_nothing() {
    let _turn = crate::interrupt::TestTurn::take();
    let dm = MockCache::new(vec![Some(0), Some(1)]);
    let dev = DmDevice::Name("c".into());
    let cache = LiveCache::inspect(&dm, &dev, &era()).unwrap();
    let feed = |m: &mut Matcher<'_>| -> Result<(), CacheError> {
        // What the signal thread of a tool does when SIGTERM comes; the watcher takes it.
        crate::interrupt::on_signal(libc::SIGTERM);
        std::thread::sleep(std::time::Duration::from_millis(100));
        m.written(0..64)
    };
    let opts = CacheOptions {
        handle_signals: true,
        ..CacheOptions::default()
    };
    let e = cache
        .invalidate(&dm, &era(), &opts, &dm.open(), &feed)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "c: interrupted by SIGTERM; the cache is resumed; nothing was invalidated"
    );
    assert_eq!(changes(&dm), ["suspend", "resume"]);
    assert!(!dm.state().suspended);
}

/// A feed that loads a table in writeback mode into the cache the first time it is called
/// (while the run holds the cache suspended, as someone at another terminal could), or the
/// second when `second`, and else lists era blocks 0 to 3 as written.
fn loading_feed<'a>(
    dm: &'a MockCache,
    second: bool,
) -> impl Fn(&mut Matcher<'_>) -> Result<(), CacheError> + 'a {
    let calls = Mutex::new(0);
    move |m| {
        let mut n = calls.lock().unwrap();
        *n += 1;
        if *n == 1 + usize::from(second) {
            dm.set(|s| s.loaded = Some("writeback"));
        }
        m.written(0..4 * 32)
    }
}

/// A run on a cache mapping origin blocks 0, 1 and 9 whose feed loads a table as
/// [`loading_feed`] does: the cache after it, and the run's error.
fn run_loading(second: bool) -> (MockCache, CacheLiveError) {
    let dm = MockCache::new(vec![Some(0), Some(1), Some(9)]);
    let dev = DmDevice::Name("c".into());
    let cache = LiveCache::inspect(&dm, &dev, &era()).unwrap();
    let e = cache
        .invalidate(
            &dm,
            &era(),
            &CacheOptions::default(),
            &dm.open(),
            &loading_feed(&dm, second),
        )
        .unwrap_err();
    (dm, e)
}

#[test]
fn a_table_loaded_while_the_run_held_the_cache_suspended_stops_it_before_any_message() {
    let (dm, e) = run_loading(false);
    assert_eq!(
        e.what(),
        "the cache's table changed during the run (a table loaded while the run held the \
         cache suspended goes live when the run resumes it); nothing was invalidated: see \
         dmsetup table c and dmsetup status c before running again"
    );
    // Resumed (which made the loaded table live), and no message sent.
    assert_eq!(changes(&dm), ["suspend", "resume"]);
    let s = dm.state();
    assert!(!s.suspended && s.mode == "writeback");
    assert_eq!(s.map, [Some(0), Some(1), Some(9)]);
}

#[test]
fn a_table_loaded_during_the_last_read_voids_its_verdict() {
    let (dm, e) = run_loading(true);
    assert!(
        e.what()
            .contains("; 1 invalidate_cblocks messages had been sent: see"),
        "{e}"
    );
    assert_eq!(
        changes(&dm),
        [
            "suspend",
            "resume",
            "invalidate_cblocks 0-2",
            "suspend",
            "resume"
        ]
    );
    assert!(!dm.state().suspended);
}

#[test]
fn a_message_refused_because_another_table_went_live_says_so() {
    let dm = MockCache::new(vec![Some(0), Some(1), Some(9)]);
    dm.set(|s| s.reload_before_message = Some("writeback"));
    let e = run(&dm, CacheOptions::default(), &[0..4]).unwrap_err();
    assert!(
        e.what()
            .starts_with("the cache's table changed during the run")
            && e.what().contains("; nothing was invalidated: see"),
        "{e}"
    );
    // Without the reload, the same refusal is the kernel's own, and running again is right.
    let dm = MockCache::new(vec![Some(0), Some(1), Some(9)]);
    dm.fail_on("invalidate_cblocks", libc::EPERM);
    let e = run(&dm, CacheOptions::default(), &[0..4]).unwrap_err();
    assert!(
        e.what()
            .starts_with("invalidate_cblocks refused after 0 of 1"),
        "{e}"
    );
}

#[test]
fn metadata_the_kernel_could_not_commit_after_the_messages_is_told_as_such() {
    // As the kernel did in the lab: the messages taken, the next commit failed, the metadata
    // on its device (read again after the last suspend) still maps the blocks.
    let dm = MockCache::new(vec![Some(0), Some(1), Some(5)]);
    dm.set(|s| s.writes_fail_at_message = true);
    let e = run(&dm, CacheOptions::default(), &[0..4]).unwrap_err();
    assert_eq!(
        e.what(),
        "the kernel could not commit the cache's metadata during the run, after 1 \
         invalidate_cblocks messages, and now reports it read-only and flagged needs_check ('ro \
         needs_check') (dmsetup status c; see the kernel log): the metadata on its device still \
         maps 2 cache blocks to written blocks; do not use the cache in writeback or \
         writethrough mode with it: check and repair the metadata, load the cache in \
         passthrough mode and run again"
    );
    assert!(!dm.state().suspended);
    // A message refused by the read-only metadata: how many went before, the same advice.
    // Every other cache block holds a written origin block: two messages.
    let dm = MockCache::new((0..3000).map(Some).collect());
    dm.set(|s| s.writes_fail_at_message = true);
    let blocks: Vec<_> = (0..1500).map(|i| 4 * i..4 * i + 1).collect();
    let e = run(&dm, CacheOptions::default(), &blocks).unwrap_err();
    assert!(
        e.what().starts_with(
            "the kernel could not commit the cache's metadata during the run, after 1 \
             invalidate_cblocks messages"
        ) && e
            .what()
            .contains("the metadata on its device may still map cache blocks"),
        "{e}"
    );
    assert!(!dm.state().suspended);
}
