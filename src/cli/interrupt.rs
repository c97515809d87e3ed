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

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::pdata::io::{Block, BlockIo, ByteIo};

/// The signal that stopped a writer, 0 for none.
static STOPPED_BY: AtomicI32 = AtomicI32::new(0);

struct State {
    tool: &'static str,
    temp_files: Vec<PathBuf>,
    /// The device a writer is writing, and whether the first write has been made.
    output: Option<(String, bool)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    tool: "",
    temp_files: Vec::new(),
    output: None,
});

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

fn on_signal(sig: i32) {
    let mut st = state();
    for t in st.temp_files.drain(..) {
        let _ = std::fs::remove_file(t);
    }
    let tool = st.tool;
    let name = signal_name(sig);
    match &st.output {
        Some((_, true)) => {
            // The writer stops at its next write and reports its state itself.
            STOPPED_BY.store(sig, Ordering::SeqCst);
        }
        Some((path, false)) => {
            super::say(&format!(
                "{tool}: {path}: interrupted by {name} before anything was written; the \
                 output is unchanged"
            ));
            std::process::exit(exit_status(sig).into());
        }
        None => {
            super::say(&format!("{tool}: interrupted by {name}"));
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

/// Removes `path` if the tool is stopped (a temporary output file).
pub fn remove_on_signal(path: &Path) {
    state().temp_files.push(path.to_path_buf());
}

/// Stops removing `path` on a signal (it was renamed into place, or removed).
pub fn forget(path: &Path) {
    state().temp_files.retain(|p| p != path);
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
    super::say(&if result.is_ok() {
        format!("{tool}: {out}: interrupted by {name} after the output was completely written")
    } else {
        format!("{tool}: {out}: error: interrupted by {name}: {unfinished}")
    });
    Some(exit_status(sig))
}
