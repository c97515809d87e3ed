//! How much memory a run of a program took at its peak: the tests that show a tool's memory
//! does not grow with its input compare this at two sizes (never a timing).

use super::run::Outcome;
use std::io::Read;
use std::process::{Command, Stdio};

/// Runs `cmd` to its end, its streams captured, and returns what it did with its peak
/// resident memory in KiB (the kernel's count for that one child, `ru_maxrss` of `wait4`).
// The child is reaped by wait4 itself, not by std's `wait`, which cannot return its usage.
#[allow(clippy::zombie_processes)]
pub fn peak_memory_kib(cmd: &mut Command) -> (Outcome, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let drain = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut s) = stream {
                s.read_to_end(&mut bytes).expect("a child's stream");
            }
            bytes
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are live, writable and of the types wait4 writes; `pid` is
    // our own child, not yet reaped (std's Child is never waited on here).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let text = |t: std::thread::JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&t.join().expect("a reader thread")).into_owned()
    };
    let outcome = Outcome {
        code,
        stdout: text(out),
        stderr: text(err),
    };
    (outcome, u64::try_from(usage.ru_maxrss).expect("a size"))
}
