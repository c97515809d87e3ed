//! SIGINT, SIGTERM and SIGHUP: what a tool leaves behind when it is stopped.
//!
//! The signals are blocked in every thread and taken by one thread of ours with `sigwait`, so
//! that the decision is made outside any signal handler and never in the middle of a write:
//!
//! - before a writer's first write (and in every reader), the tool removes its temporary
//!   output files, says that nothing was changed, and exits at once;
//! - once a writer has started writing, the next write is refused instead, so the writer
//!   fails the way an I/O error would make it fail and leaves its documented state (an era
//!   writer's in-progress marker, a log's old content); the tool then says which state that
//!   is and what to run.
//!
//! Writes go through [`Guarded`], which holds the lock for the length of each write: a signal
//! sees either "no write yet" or a write that has completed.
//!
//! A reader that holds something outside the process (a live session's metadata snapshot)
//! starts a [`Watch`] instead: while one exists a signal only stops the reads of
//! [`Interruptible`] devices and wakes the watch's owner, which releases what it holds
//! before the process ends.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::pdata::io::{Block, BlockIo, ByteIo};

/// The signal that stopped a writer, 0 for none.
static STOPPED_BY: AtomicI32 = AtomicI32::new(0);

struct State {
    tool: &'static str,
    /// Temporary files to remove on a signal, each with the file it would have replaced.
    temp_files: Vec<(PathBuf, PathBuf)>,
    /// The device a writer is writing, and whether the first write has been made.
    output: Option<(String, bool)>,
    /// Watches alive, a signal none of them has taken yet, and whether the watched work
    /// is over.
    watches: usize,
    watch_signal: Option<i32>,
    watch_finished: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    tool: "",
    temp_files: Vec::new(),
    output: None,
    watches: 0,
    watch_signal: None,
    watch_finished: false,
});

/// Wakes the owners of [`Watch`]es.
static WATCH_WAKE: Condvar = Condvar::new();

/// Writes one line on stderr. A stderr that is closed or whose reader went away is not an
/// error worth dying for: the exit status still tells the outcome. (Every tool's lines go
/// through here, as `cli::say`; it lives at this level for the messages of a signal.)
pub fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The signals a tool stops on.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The exit status after signal `sig`, as shells report it.
pub fn exit_status(sig: i32) -> u8 {
    u8::try_from(128 + sig).unwrap_or(255)
}

/// The signal's name, for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Blocks the signals in the calling thread (and so in every thread it starts later) and
/// starts the thread that takes them. Call it first in `main`, before any other thread
/// exists. Without it (a thread cannot be started) the signals keep their default action.
pub fn install(tool: &'static str) {
    state().tool = tool;
    // SAFETY: `set` and `current` are initialised before use; the calls only read or write
    // the structures they are given.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            // A signal the caller ignores (nohup, a background job of a script) stays ignored.
            let mut current: libc::sigaction = std::mem::zeroed();
            let ignored = libc::sigaction(s, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == libc::SIG_IGN;
            if !ignored {
                libc::sigaddset(&mut set, s);
            }
        }
        set
    };
    // Blocked before the thread starts, so that it inherits the mask: sigwait only takes
    // signals that are blocked in the waiting thread.
    // SAFETY: sigset_t is plain data, for which all zeros is a valid (empty) value.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are valid sigset_t values.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    let waiter = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: sigwait reads `set` and writes one int into `sig`.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                on_signal(sig);
            }
        });
    if waiter.is_err() {
        // SAFETY: restores the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    }
}

/// The signal state is per process: the tests that change it take turns.
#[cfg(test)]
static TEST_LOCK: Mutex<()> = Mutex::new(());

/// A test's turn at the signal state: it starts reset and is reset again when the turn
/// ends, however the test ends, so that no signal a test pretended to receive reaches the
/// next one.
#[cfg(test)]
pub(crate) struct TestTurn {
    _lock: MutexGuard<'static, ()>,
}

#[cfg(test)]
impl TestTurn {
    /// Waits for the turn; a test that failed in its own turn does not hold the others up.
    pub(crate) fn take() -> TestTurn {
        let lock = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        reset();
        TestTurn { _lock: lock }
    }
}

#[cfg(test)]
impl Drop for TestTurn {
    fn drop(&mut self) {
        reset();
    }
}

/// Forgets a signal a test pretended to receive.
#[cfg(test)]
fn reset() {
    STOPPED_BY.store(0, Ordering::SeqCst);
    state().output = None;
}

/// What the signal thread does with signal `sig`.
pub(crate) fn on_signal(sig: i32) {
    let mut st = state();
    // The files a report would have replaced, which the signal leaves as they were.
    let mut kept = Vec::new();
    for (t, dest) in st.temp_files.drain(..) {
        let _ = std::fs::remove_file(t);
        kept.push(dest);
    }
    let tool = st.tool;
    let name = signal_name(sig);
    if st.watches > 0 {
        STOPPED_BY.store(sig, Ordering::SeqCst);
        st.watch_signal = Some(sig);
        WATCH_WAKE.notify_all();
        return;
    }
    match &st.output {
        Some((_, true)) => {
            // The writer stops at its next write and reports its state itself.
            STOPPED_BY.store(sig, Ordering::SeqCst);
        }
        Some((path, false)) => {
            say(&format!(
                "{tool}: {path}: interrupted by {name} before anything was written; the \
                 output is unchanged"
            ));
            std::process::exit(exit_status(sig).into());
        }
        None => {
            match kept.as_slice() {
                [dest] => say(&format!(
                    "{tool}: {}: interrupted by {name}; it is left as it was",
                    dest.display()
                )),
                _ => say(&format!("{tool}: interrupted by {name}")),
            }
            std::process::exit(exit_status(sig).into());
        }
    }
}

/// The signal that stopped a writer, if one did.
pub fn stopped_by() -> Option<i32> {
    match STOPPED_BY.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Removes `path` if the tool is stopped (a temporary output file that `replaces` a file, or
/// was to create it): the signal's line then names that file, left as it was.
pub fn remove_on_signal(path: &Path, replaces: &Path) {
    state()
        .temp_files
        .push((path.to_path_buf(), replaces.to_path_buf()));
}

/// Stops removing `path` on a signal (it was renamed into place, or removed).
pub fn forget(path: &Path) {
    state().temp_files.retain(|(p, _)| p != path);
}

/// A device a writer writes through, so that a signal never lands in the middle of a write
/// and stops the writer at the next one.
pub struct Guarded<'a, T: ?Sized> {
    inner: &'a T,
}

/// Declares the tool a writer of `name` (the device or file it is about to change), so that
/// a signal before its first write says that `name` is unchanged.
pub fn writing_to(name: &str) {
    state().output = Some((name.to_string(), false));
}

/// Whether the writer declared with [`writing_to`] has started writing (through a
/// [`Guarded`] device): an error after that leaves the output in the writer's unfinished
/// state, which its error line must say.
pub fn output_touched() -> bool {
    state().output.as_ref().is_some_and(|(_, started)| *started)
}

impl<'a, T: ?Sized> Guarded<'a, T> {
    /// Guards the writes to `inner` (a device of the writer declared with [`writing_to`]).
    pub fn new(inner: &'a T) -> Guarded<'a, T> {
        Guarded { inner }
    }

    fn write_with<R>(&self, write: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        let mut st = state();
        if let Some(sig) = stopped_by() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                format!("interrupted by {}", signal_name(sig)),
            ));
        }
        if let Some((_, started)) = st.output.as_mut() {
            *started = true;
        }
        write(self.inner)
    }
}

impl<T: BlockIo + ?Sized> BlockIo for Guarded<'_, T> {
    fn nr_blocks(&self) -> u64 {
        self.inner.nr_blocks()
    }

    fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()> {
        self.inner.read(loc, buf)
    }

    fn read_run(&self, first: u64, bufs: &mut [Box<Block>]) -> io::Result<()> {
        self.inner.read_run(first, bufs)
    }

    fn concurrent_reads(&self) -> bool {
        self.inner.concurrent_reads()
    }

    fn write(&self, loc: u64, buf: &Block) -> io::Result<()> {
        self.write_with(|io| io.write(loc, buf))
    }

    fn flush(&self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: ByteIo + ?Sized> ByteIo for Guarded<'_, T> {
    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_with(|io| io.write_at(buf, offset))
    }

    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
}

/// After a writer of `output` returns: when a signal stopped it, says in one line which
/// state the output was left in (`unfinished` when the writer failed, complete when it had
/// already finished) and returns the exit status to end with.
pub fn after_write<T, E>(output: &Path, result: &Result<T, E>, unfinished: &str) -> Option<u8> {
    let sig = stopped_by()?;
    let tool = state().tool;
    let name = signal_name(sig);
    let out = output.display();
    say(&if result.is_ok() {
        format!("{tool}: {out}: interrupted by {name} after the output was completely written")
    } else {
        format!("{tool}: {out}: error: interrupted by {name}: {unfinished}")
    });
    Some(exit_status(sig))
}

/// While it exists, a signal does not end the process: it stops the reads of
/// [`Interruptible`] devices and is handed to [`Watch::wait`], so that the owner can
/// release what it holds outside the process (a metadata snapshot) and end the run.
pub struct Watch(());

impl Watch {
    /// Starts watching.
    pub fn start() -> Watch {
        let mut st = state();
        st.watches += 1;
        st.watch_signal = None;
        st.watch_finished = false;
        Watch(())
    }

    /// Waits for a signal (its number, handed out once) or for [`Watch::finish`] (0), for
    /// at most `timeout` (`None`: no limit); `None` when the time ran out.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<i32> {
        let st = state();
        let ready = |st: &mut State| st.watch_signal.is_none() && !st.watch_finished;
        let mut st = match timeout {
            None => WATCH_WAKE
                .wait_while(st, ready)
                .unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                WATCH_WAKE
                    .wait_timeout_while(st, t, ready)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        st.watch_signal.take().or(st.watch_finished.then_some(0))
    }

    /// Wakes a [`Watch::wait`] with 0: the watched work is over.
    pub fn finish(&self) {
        let mut st = state();
        st.watch_finished = true;
        WATCH_WAKE.notify_all();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut st = state();
        st.watches = st.watches.saturating_sub(1);
    }
}

/// How long a [`watched`] run has to unwind after a signal before the watcher releases what
/// it holds itself: reads are checked block by block, but a tool may spend a while between
/// two reads formatting what it read (era_dump writes 32576 lines per bitset block).
pub const GRACE: Duration = Duration::from_secs(5);

/// Runs `work` while holding something outside the process (a metadata snapshot, a
/// suspended device) that `release` gives back, saying what it did ("; metadata snapshot 7
/// dropped", or "" when nothing was held). With `enabled`, a signal is stored in `signal`
/// and stops [`Interruptible`] reads, so that `work` unwinds and its caller releases; if that
/// has not happened within [`GRACE`] (or a second signal comes), the watcher releases,
/// says so on behalf of `device`, and ends the process.
pub fn watched<T>(
    enabled: bool,
    signal: &AtomicI32,
    device: &dyn std::fmt::Display,
    release: &(dyn Fn() -> String + Sync),
    work: impl FnOnce() -> T,
) -> T {
    let watch = enabled.then(Watch::start);
    let result = std::thread::scope(|s| {
        // The watcher returns once the watch is finished; a guard finishes it however the
        // work ends, a panic included, or the scope would wait for the watcher forever.
        let _finish = FinishOnDrop(watch.as_ref());
        if let Some(w) = &watch {
            let device = device.to_string();
            s.spawn(move || watch_signals(w, signal, &device, release));
        }
        work()
    });
    drop(watch);
    result
}

/// Finishes a watch when dropped.
struct FinishOnDrop<'w>(Option<&'w Watch>);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.0 {
            w.finish();
        }
    }
}

/// The watcher of [`watched`].
fn watch_signals(w: &Watch, signal: &AtomicI32, device: &str, release: &dyn Fn() -> String) {
    let sig = match w.wait(None) {
        Some(0) | None => return,
        Some(s) => s,
    };
    signal.store(sig, Ordering::SeqCst);
    if w.wait(Some(GRACE)) == Some(0) {
        return;
    }
    let msg = release();
    let tool = state().tool;
    say(&format!(
        "{tool}: {device}: error: interrupted by {}{msg}",
        signal_name(sig)
    ));
    // SAFETY: ends the process at once; what it held outside, the only state that matters,
    // was given back just above.
    unsafe { libc::_exit(exit_status(sig).into()) };
}

/// A device whose reads fail once a signal has stopped the tool, so that a reader under a
/// [`Watch`] stops at its next block. It never writes.
pub struct Interruptible<'a> {
    inner: &'a dyn BlockIo,
}

impl<'a> Interruptible<'a> {
    /// Reads `inner` until a signal comes.
    pub fn new(inner: &'a dyn BlockIo) -> Interruptible<'a> {
        Interruptible { inner }
    }

    /// Fails once a signal has come.
    fn check(&self) -> io::Result<()> {
        match stopped_by() {
            Some(sig) => Err(io::Error::new(
                io::ErrorKind::Interrupted,
                format!("interrupted by {}", signal_name(sig)),
            )),
            None => Ok(()),
        }
    }
}

impl BlockIo for Interruptible<'_> {
    fn nr_blocks(&self) -> u64 {
        self.inner.nr_blocks()
    }

    fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()> {
        self.check()?;
        self.inner.read(loc, buf)
    }

    fn read_run(&self, first: u64, bufs: &mut [Box<Block>]) -> io::Result<()> {
        self.check()?;
        self.inner.read_run(first, bufs)
    }

    fn concurrent_reads(&self) -> bool {
        self.inner.concurrent_reads()
    }

    fn write(&self, _: u64, _: &Block) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a reader never writes metadata",
        ))
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::io::MemIo;

    #[test]
    fn a_watch_sees_a_signal_and_stops_the_reads() {
        let _turn = TestTurn::take();
        let mem = MemIo::new(2);
        let io = Interruptible::new(&mem);
        let watch = Watch::start();
        assert!(io.read_new(1).is_ok());
        assert_eq!(watch.wait(Some(Duration::from_millis(10))), None);
        // What the signal thread does on SIGHUP; with a watch alive the process goes on.
        on_signal(libc::SIGHUP);
        assert_eq!(watch.wait(Some(Duration::from_secs(5))), Some(libc::SIGHUP));
        let e = io.read_new(1).err().unwrap();
        assert_eq!(e.to_string(), "interrupted by SIGHUP");
        assert!(io.write(0, &Block::zeroed()).is_err());
        watch.finish();
        assert_eq!(watch.wait(None), Some(0));
        drop(watch);
    }

    #[test]
    fn a_writer_is_stopped_at_its_next_write_once_it_has_started() {
        let _turn = TestTurn::take();
        let mem = MemIo::new(2);
        writing_to("mem");
        let io = Guarded::new(&mem);
        io.write(1, &Block::zeroed()).unwrap();
        // Started: the signal is recorded, not acted on.
        on_signal(libc::SIGTERM);
        let e = io.write(1, &Block::zeroed()).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
        assert!(io.flush().is_ok(), "a flush is never refused");
        assert_eq!(stopped_by(), Some(libc::SIGTERM));
    }
}
