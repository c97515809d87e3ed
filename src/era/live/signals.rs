//! SIGINT, SIGTERM and SIGHUP during a live session: the snapshot the session took must be
//! dropped before the process goes away.
//!
//! A handler writes the signal's number into a pipe (the only thing it does, as only
//! async-signal-safe calls are allowed there) and a watcher thread reads it. The watcher
//! raises a flag that the metadata reads check ([`Interruptible`]), so the session unwinds
//! through its normal exit path and drops the snapshot. If the main thread does not come
//! back within a grace period (blocked writing to a full pipe, say), the watcher drops the
//! snapshot itself and ends the process. This is what the `signal-hook` crate's iterator
//! does; written here it is about sixty lines on the `libc` the crate already depends on,
//! and the handlers can be removed again when the session ends.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use crate::pdata::io::{Block, BlockIo};

/// The signals a session handles.
pub const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// How long the watcher waits for the main thread to unwind before it drops the snapshot
/// itself: reads are checked block by block, but a tool may spend a while between two
/// reads formatting what it read (era_dump writes 32576 lines per bitset block).
pub const GRACE: Duration = Duration::from_secs(5);

static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// Serialises the tests that install the handlers (one set per process).
#[cfg(test)]
pub static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
static INSTALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) and errno access are async-signal-safe; errno is restored so
        // that the interrupted code does not see the handler's.
        unsafe {
            let errno = *libc::__errno_location();
            let b = sig as u8;
            libc::write(fd, (&b as *const u8).cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

/// The signal's name, for messages.
pub fn name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

/// Handlers for [`SIGNALS`] feeding a pipe; removed (the previous actions restored) on drop.
/// One at a time per process.
pub struct SignalPipe {
    read_fd: libc::c_int,
    write_fd: libc::c_int,
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl SignalPipe {
    /// Installs the handlers.
    pub fn install() -> io::Result<SignalPipe> {
        if INSTALLED.swap(true, Ordering::SeqCst) {
            return Err(io::Error::other("signal handlers already installed"));
        }
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            INSTALLED.store(false, Ordering::SeqCst);
            return Err(io::Error::last_os_error());
        }
        let mut pipe = SignalPipe {
            read_fd: fds[0],
            write_fd: fds[1],
            old: Vec::new(),
        };
        // A full pipe must not block the handler.
        // SAFETY: plain fcntl on a descriptor we own.
        unsafe { libc::fcntl(pipe.write_fd, libc::F_SETFL, libc::O_NONBLOCK) };
        WRITE_FD.store(pipe.write_fd, Ordering::SeqCst);
        for sig in SIGNALS {
            // SAFETY: a zeroed sigaction with a valid handler and an empty mask is valid;
            // the old action is saved to be restored.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                act.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut act.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &act, &mut old) != 0 {
                    return Err(io::Error::last_os_error());
                }
                pipe.old.push((sig, old));
            }
        }
        Ok(pipe)
    }

    /// Waits for a signal, or for [`SignalPipe::wake`] (`Some(0)`), for at most `timeout`
    /// (`None`: no limit). `None` when the time ran out.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<i32> {
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        let mut pfd = libc::pollfd {
            fd: self.read_fd,
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r == 0 {
                return None;
            }
            if r < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return None;
            }
            let mut b = 0u8;
            // SAFETY: reads one byte into `b`.
            let n = unsafe { libc::read(self.read_fd, (&mut b as *mut u8).cast(), 1) };
            if n == 1 {
                return Some(b as i32);
            }
        }
    }

    /// Makes a waiting [`SignalPipe::wait`] return `Some(0)`.
    pub fn wake(&self) {
        let b = 0u8;
        // SAFETY: writes one byte from `b`.
        unsafe { libc::write(self.write_fd, (&b as *const u8).cast(), 1) };
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for (sig, old) in &self.old {
            // SAFETY: restores the action saved at install.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
        WRITE_FD.store(-1, Ordering::SeqCst);
        // SAFETY: closes the descriptors we own.
        unsafe {
            libc::close(self.read_fd);
            libc::close(self.write_fd);
        }
        INSTALLED.store(false, Ordering::SeqCst);
    }
}

/// A device whose reads fail once `signal` holds a signal number, so that a reader stops
/// at its next block.
pub struct Interruptible<'a> {
    /// The device.
    pub inner: &'a dyn BlockIo,
    /// 0, or the signal received.
    pub signal: &'a AtomicI32,
}

impl Interruptible<'_> {
    fn check(&self) -> io::Result<()> {
        match self.signal.load(Ordering::SeqCst) {
            0 => Ok(()),
            s => Err(io::Error::other(format!("interrupted by {}", name(s)))),
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

    fn write(&self, _: u64, _: &Block) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a live session never writes metadata",
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
    fn reads_stop_once_a_signal_is_recorded() {
        let mem = MemIo::new(2);
        let flag = AtomicI32::new(0);
        let io = Interruptible {
            inner: &mem,
            signal: &flag,
        };
        assert!(io.read_new(1).is_ok());
        flag.store(libc::SIGTERM, Ordering::SeqCst);
        let e = io.read_new(1).err().unwrap();
        assert_eq!(e.to_string(), "interrupted by SIGTERM");
        assert!(io.write(0, &Block::zeroed()).is_err());
    }

    #[test]
    fn a_signal_reaches_the_pipe_and_the_old_action_comes_back() {
        // SIGHUP only: the test harness runs other tests in threads of this process, and
        // none of them touches it.
        let _one = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let pipe = SignalPipe::install().unwrap();
        assert!(SignalPipe::install().is_err(), "one at a time");
        assert_eq!(pipe.wait(Some(Duration::from_millis(10))), None);
        // SAFETY: sends SIGHUP to this process, which the pipe's handler catches.
        unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
        assert_eq!(pipe.wait(Some(Duration::from_secs(5))), Some(libc::SIGHUP));
        pipe.wake();
        assert_eq!(pipe.wait(None), Some(0));
        drop(pipe);
        // SAFETY: reads the current action without changing it.
        let cur = unsafe {
            let mut cur: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut cur);
            cur
        };
        assert_eq!(cur.sa_sigaction, libc::SIG_DFL);
    }
}
