//! Times one run of a command for `benches/era_tools.sh`: from the moment it is started to
//! the moment it is reaped, as a script that runs the tool waits for it, with nothing
//! started around it. Through a shell and GNU time, a command that does nothing already
//! measured 2 to 3 ms on the benchmark's machine, as long as the fastest era tools' whole
//! run at 1 million blocks: the harness's own start-up weighed on every ratio of the small
//! sizes.
//!
//!     bench_timer ERRORS COMMAND [ARG...]
//!
//! The command reads an empty input, its output goes to /dev/null and its errors to the
//! file ERRORS. On success prints one line, `wall-seconds peak-KiB cpu-seconds` (the peak
//! resident memory and the user + system time the kernel accounted to the command and
//! the children it waited for, as GNU time's `%M` and `%U + %S`); exit status 1, with the
//! reason on stderr, when the command could not start or did not exit with status 0.

use std::fs::File;
use std::io;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Seconds in a `timeval`.
fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// Runs the command; its wall time, peak memory (KiB) and CPU time.
fn time(errors: &str, command: &str, args: &[String]) -> io::Result<(f64, libc::c_long, f64)> {
    let mut cmd = Command::new(command);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(errors)?);
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and usage are valid for writes for the length of the call.
        if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    // Reaped above: the handle has no process left to wait for.
    drop(child);
    if !libc::WIFEXITED(status) {
        let e = format!("killed by signal {}", libc::WTERMSIG(status));
        return Err(io::Error::other(e));
    }
    if libc::WEXITSTATUS(status) != 0 {
        let e = format!("exit status {}", libc::WEXITSTATUS(status));
        return Err(io::Error::other(e));
    }
    let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    Ok((wall, usage.ru_maxrss, cpu))
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [errors, command, rest @ ..] = args.as_slice() else {
        eprintln!("usage: bench_timer ERRORS COMMAND [ARG...]");
        return std::process::ExitCode::from(2);
    };
    match time(errors, command, rest) {
        Ok((wall, peak, cpu)) => {
            println!("{wall:.6} {peak} {cpu:.3}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_timer: {command}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
