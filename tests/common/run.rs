//! Running a program and looking at what it did: the one way the tests run the crate's
//! binaries, scripts and other programs.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The path of binary `bin` of this crate.
// Cargo builds every binary of the crate into one folder, and only the binaries named in
// `CARGO_BIN_EXE_*` at compile time could be listed otherwise: this also finds the tools
// the tests list through `commands::all()`.
pub fn exe(bin: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_era_check")).with_file_name(bin)
}

/// A command that runs binary `bin` of this crate; add arguments, environment, a folder or
/// streams with [`Command`]'s own builder, and run it with [`outcome`].
pub fn command(bin: &str) -> Command {
    Command::new(exe(bin))
}

/// What a run did: its exit code (-1 when a signal ended it) and its two streams.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code, or -1 when a signal ended the run.
    pub code: i32,
    /// Standard output, invalid UTF-8 replaced.
    pub stdout: String,
    /// Standard error, invalid UTF-8 replaced.
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(out: Output) -> Outcome {
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Outcome {
    /// Whether the run exited 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Asserts a clean failure: exit 1, no panic, and `words` in the message.
    pub fn assert_error(&self, words: &str) {
        self.assert_error_of("", words);
    }

    /// [`Outcome::assert_error`] of the run `what` (a tool and its arguments), which a
    /// failed assertion names.
    pub fn assert_error_of(&self, what: &str, words: &str) {
        assert_eq!(self.code, 1, "{what} stderr: {}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{what} {}", self.stderr);
        assert!(
            self.stderr.contains(words),
            "{what} wanted '{words}' in: {}",
            self.stderr
        );
    }
}

/// Runs `cmd` to its end, with the streams not set otherwise captured.
pub fn outcome(cmd: &mut Command) -> Outcome {
    try_outcome(cmd).unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// [`outcome`], or the error when the program cannot be started (e.g. it is not
/// installed).
pub fn try_outcome(cmd: &mut Command) -> std::io::Result<Outcome> {
    // A binary copied by a test (one_voice) may still be open for writing in another test's
    // child, forked during the copy and not yet at its exec: the kernel refuses to run the
    // copy (ETXTBSY) for that moment.
    for _ in 0..100 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            o => return o.map(Outcome::from),
        }
    }
    panic!("{cmd:?}: still busy")
}

/// Runs `cmd` with `stdin` piped in, written by another thread as the program reads.
pub fn outcome_fed(cmd: &mut Command, stdin: Vec<u8>) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut pipe = child.stdin.take().expect("stdin");
    // The program may stop reading at an error: a broken pipe here is its business.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
    let out = child.wait_with_output().expect("the run ends");
    writer.join().expect("writer");
    Outcome::from(out)
}

/// Runs binary `bin` of this crate with `args`.
pub fn run(bin: &str, args: &[&str]) -> Outcome {
    outcome(command(bin).args(args))
}

/// Runs binary `bin` of this crate with `args` and then a temporary file holding `img`.
pub fn run_on_bytes(bin: &str, img: &[u8], args: &[&str]) -> Outcome {
    let f = super::temp_image(img);
    let mut all = args.to_vec();
    all.push(super::path_str(&f));
    run(bin, &all)
}

/// Stdout of a run of `bin` that must succeed.
pub fn ok(bin: &str, args: &[&str]) -> String {
    let o = run(bin, args);
    assert!(o.success(), "{bin} {args:?} failed: {}", o.stderr);
    o.stdout
}

/// A pipe whose reading end is already closed.
pub fn broken_pipe() -> Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe() fills the two descriptors, which are then owned exactly once.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: as above.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

/// `/dev/full` for writing: every write fails with ENOSPC.
pub fn dev_full() -> Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

/// Makes the child of `cmd` unable to write its files past `bytes`: its writes there fail
/// with EFBIG, as on a full disk, instead of it being killed by SIGXFSZ.
pub fn limit_file_size(cmd: &mut Command, bytes: u64) {
    // SAFETY: setrlimit and signal are async-signal-safe, and the child changes only its
    // own limit and disposition.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

/// A PATH on which the crate's binaries come first; `extra` (a folder of stand-ins) before
/// them.
pub fn path_with_tools(extra: Option<&Path>) -> std::ffi::OsString {
    let tools = exe("era_check");
    let mut dirs: Vec<PathBuf> = extra.into_iter().map(Path::to_path_buf).collect();
    dirs.push(tools.parent().expect("binaries folder").to_path_buf());
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}

/// `bash script`, the crate's binaries first on its PATH, after `stand_ins`.
pub fn script(script: &Path, stand_ins: Option<&Path>) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(script).env("PATH", path_with_tools(stand_ins));
    cmd
}

/// Every tool's name and `--help`, each run checked to succeed.
pub fn every_tools_help() -> Vec<(String, String)> {
    era_log_tools::commands::all()
        .iter()
        .map(|cmd| {
            let name = cmd.get_name().to_string();
            let out = run(&name, &["--help"]);
            assert_eq!(out.code, 0, "{name} --help");
            (name, out.stdout)
        })
        .collect()
}
