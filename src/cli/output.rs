//! Where a tool writes its report (`-o FILE`, `-o -`, or stdout), so that a failed run never
//! costs the user the file that was there before.
//!
//! - A regular file (or a symlink to one) is written under a temporary name in the same
//!   directory, made durable, and renamed over the file only when the tool succeeds; a
//!   symlink stays a symlink, and the file it names is replaced.
//! - A block device is refused: a report written over a disk would cost what it holds.
//! - Anything else (a character device, a FIFO, a socket, `/dev/stdout` and the other names
//!   under `/dev` and `/proc`) is written in place: never created, truncated, removed or
//!   replaced.
//! - `-o -` is stdout.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tempfile::TempPath;

use crate::cli::report::{file_error, OnFileExt};
use crate::interrupt;
use crate::pdata::io::same_file;

/// Bytes buffered before a write reaches the file.
const BUFFER: usize = 1 << 17;

/// A report being written.
pub struct Output {
    sink: Sink,
    /// What the error lines call it: the path given, or `stdout`.
    name: String,
}

/// A write to an [`Output`] that failed, carried inside the `io::Error` the write returns,
/// so that the error line names the output however far the error travels.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct OutputFailure {
    /// The output's name.
    pub name: String,
    /// Why the write failed.
    pub error: io::Error,
}

enum Sink {
    Stdout(BufWriter<io::Stdout>),
    InPlace(BufWriter<File>),
    Replace(Replacement),
}

/// A temporary file that becomes `dest` on [`Output::commit`] and disappears otherwise.
struct Replacement {
    file: BufWriter<File>,
    /// `None` once renamed into place.
    temp: Option<TempPath>,
    dest: PathBuf,
}

impl Drop for Replacement {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let path = temp.to_path_buf();
            // Removed before the signal handler forgets it, so that no signal can leave it.
            drop(temp);
            interrupt::forget(&path);
        }
    }
}

/// Whether `path` names stdout: `-`.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Names the system keeps for streams and devices (`/dev/stdout`, `/dev/fd/N`,
/// `/proc/self/fd/N`): written in place even when they lead to a regular file, because the
/// file is the caller's open stream.
fn is_system_name(path: &Path) -> bool {
    let under = |p: &Path| p.starts_with("/dev") || p.starts_with("/proc");
    under(path) || std::fs::canonicalize(path).is_ok_and(|c| under(&c))
}

/// Whether stdout was closed when the process started. The standard library reopens a
/// closed stdout on /dev/null before `main` (so that no file the tool opens takes its
/// place), after which writes to it vanish with exit status 0; so it is looked at earlier,
/// where the C library runs the program's initialisers.
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static SEE_STDOUT_AT_START: extern "C" fn() = see_stdout_at_start;

#[cfg(target_os = "linux")]
extern "C" fn see_stdout_at_start() {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails with EBADF on a closed one.
    let closed = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) } == -1;
    STDOUT_CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

/// Refuses, before anything is done, a stdout that was closed when the tool started
/// (`TOOL >&-`: what the tool writes there would be lost) or that is a block device
/// (`TOOL > /dev/sdb`: it would be written over the disk; the shell's truncation does not
/// touch a device, so it still holds all it held).
pub fn require_stdout() -> anyhow::Result<()> {
    if STDOUT_CLOSED_AT_START.load(Ordering::Relaxed) {
        let what = "is closed: what this tool writes there would be lost; redirect it to a \
                    file, or to /dev/null to discard it";
        return Err(file_error("stdout", what));
    }
    let stdout = io::stdout();
    let fd = std::os::fd::AsFd::as_fd(&stdout);
    let is_disk = fd
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_block_device());
    if is_disk {
        let what = "is a block device: a report is written to a file, a pipe or a terminal, \
                    never over a device";
        return Err(file_error("stdout", what));
    }
    Ok(())
}

impl Output {
    /// Opens the output `path` (stdout for `None` or `-`) for a report about `inputs`, none
    /// of which it may be.
    pub fn create(path: Option<&Path>, inputs: &[&Path]) -> anyhow::Result<Output> {
        let Some(path) = path.filter(|p| !is_stdout(p)) else {
            require_stdout()?;
            return Ok(Output {
                sink: Sink::Stdout(BufWriter::with_capacity(BUFFER, io::stdout())),
                name: "stdout".into(),
            });
        };
        if let Some(input) = inputs.iter().find(|i| same_file(path, i)) {
            let what = format!(
                "is the input {}; write the output somewhere else",
                input.display()
            );
            return Err(file_error(path, what));
        }
        let sink = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Err(super::open::not_a_file(path, true)),
            // A disk given as a report's output is a mistake that would cost what it holds.
            Ok(m) if m.file_type().is_block_device() => {
                let what = "is a block device: a report is written to a file, a pipe or \
                            stdout, never over a device";
                return Err(file_error(path, what));
            }
            Ok(m) if !m.is_file() || is_system_name(path) => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| file_error(path, format!("opening the output: {e}")))?;
                Sink::InPlace(BufWriter::with_capacity(BUFFER, f))
            }
            Ok(m) => {
                let dest = std::fs::canonicalize(path).map_err(|e| file_error(path, e))?;
                Sink::Replace(Replacement::create(dest, Some(&m)).on_file(path)?)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(path).is_ok() {
                    let what = "is a symlink to nothing; give the file it should name";
                    return Err(file_error(path, what));
                }
                Sink::Replace(Replacement::create(path.to_path_buf(), None).on_file(path)?)
            }
            Err(e) => return Err(file_error(path, e)),
        };
        Ok(Output {
            sink,
            name: path.display().to_string(),
        })
    }

    /// `e`, as an error of this output.
    fn failed(&self, e: io::Error) -> io::Error {
        let name = self.name.clone();
        io::Error::new(e.kind(), OutputFailure { name, error: e })
    }

    /// Finishes the output: flushes it and, for a regular file, makes the new content
    /// durable and moves it into place. Dropping an `Output` without committing it leaves
    /// a regular file as it was before the run.
    pub fn commit(mut self) -> io::Result<()> {
        let done = match &mut self.sink {
            Sink::Stdout(w) => w.flush(),
            Sink::InPlace(w) => w.flush(),
            Sink::Replace(r) => r.commit(),
        };
        done.map_err(|e| self.failed(e))
    }
}

/// The directory a file lies in: its parent, or `.` for a bare name.
fn directory_of(file: &Path) -> &Path {
    match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// How the names of the temporary files process `pid` writes for `name` begin; a random part
/// and [`TEMP_SUFFIX`] follow. The pid tells a later run whether the writer is gone.
fn temp_prefix(name: &str, pid: u32) -> String {
    format!(".{name}.{pid}.")
}

/// How the names of temporary files end.
const TEMP_SUFFIX: &str = ".tmp";

/// Removes the temporary files that runs killed before they could clean up (SIGKILL, a
/// crash) left beside `name` in `dir`: those named as [`temp_prefix`] and [`TEMP_SUFFIX`]
/// name them, by a process that no longer exists. A live process's file is left alone,
/// whoever it is.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(TEMP_SUFFIX))
        else {
            continue;
        };
        let Some((pid, random)) = rest.split_once('.') else {
            continue;
        };
        let random = !random.is_empty() && random.bytes().all(|b| b.is_ascii_alphanumeric());
        let (Ok(pid), true) = (pid.parse::<libc::pid_t>(), random) else {
            continue;
        };
        if pid <= 0 || u32::try_from(pid) == Ok(std::process::id()) {
            continue;
        }
        // SAFETY: signal 0 sends nothing; kill only looks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        // A run of another pid namespace (a container) or host shows no process here: its
        // file is still locked by the run that writes it ([`lock_temp`]).
        if gone && entry.file_type().is_ok_and(|t| t.is_file()) && !locked(&entry.path()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Locks a temporary file for as long as its run keeps it open, so that no other run takes
/// it for the leftover of a dead one.
fn lock_temp(f: &File) {
    // SAFETY: flock only takes a lock on the descriptor, which `f` keeps open.
    let _ = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(f), libc::LOCK_EX) };
}

/// Whether a run holds the lock of the temporary file `path`.
fn locked(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    // SAFETY: flock only takes a lock on the descriptor, which `f` keeps open; closing `f`
    // releases it.
    let free = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0;
    !free
}

impl Replacement {
    /// A temporary file beside `dest`; `old` is the file it replaces, whose owner, group and
    /// mode the new one keeps.
    fn create(dest: PathBuf, old: Option<&std::fs::Metadata>) -> io::Result<Replacement> {
        let dir = directory_of(&dest).to_path_buf();
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        remove_stale_temps(&dir, &name);
        let mode = old.map_or(0o666, |m| m.permissions().mode()) & 0o7777;
        // The crate picks the name and retries on a taken one; the file is opened here, so
        // that it is registered before it exists (a signal can never leave it) and gets the
        // old file's mode, write-only.
        let created = tempfile::Builder::new()
            .prefix(&temp_prefix(&name, std::process::id()))
            .suffix(TEMP_SUFFIX)
            .make_in(&dir, |temp| {
                interrupt::remove_on_signal(temp, &dest);
                let opened = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(temp);
                if opened.is_err() {
                    interrupt::forget(temp);
                }
                opened
            });
        let (f, temp) = match created {
            Ok(named) => named.into_parts(),
            Err(e) => {
                let what = format!("cannot create a temporary file beside it: {e}");
                return Err(io::Error::new(e.kind(), what));
            }
        };
        lock_temp(&f);
        if let Some(old) = old {
            keep_owner(&f, old);
        }
        Ok(Replacement {
            file: BufWriter::with_capacity(BUFFER, f),
            temp: Some(temp),
            dest,
        })
    }

    fn commit(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        if let Some(temp) = self.temp.take() {
            let path = temp.to_path_buf();
            if let Err(e) = temp.persist(&self.dest) {
                self.temp = Some(e.path);
                return Err(e.error);
            }
            interrupt::forget(&path);
        }
        // The rename is durable once the directory is. A directory this user may write but
        // not read cannot be opened to sync it: nothing better can be done there.
        match File::open(directory_of(&self.dest)) {
            Ok(dir) => dir.sync_all(),
            Err(_) => Ok(()),
        }
    }
}

/// Gives the new file the owner, group and mode of the one it replaces: root replacing a
/// user's report must not leave it root's. Someone who is not root can give a file away
/// only to themselves: the file is then theirs, as any file they write.
fn keep_owner(new: &File, old: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    if std::os::unix::fs::fchown(new, Some(old.uid()), Some(old.gid())).is_ok() {
        // chown clears the set-id bits; the mode asked for at creation is cut by the umask.
        let _ = new.set_permissions(old.permissions());
    }
}

/// Every error names the output ([`OutputFailure`]).
impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let done = match &mut self.sink {
            Sink::Stdout(w) => w.write(buf),
            Sink::InPlace(w) => w.write(buf),
            Sink::Replace(r) => r.file.write(buf),
        };
        done.map_err(|e| self.failed(e))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let done = match &mut self.sink {
            Sink::Stdout(w) => w.write_all(buf),
            Sink::InPlace(w) => w.write_all(buf),
            Sink::Replace(r) => r.file.write_all(buf),
        };
        done.map_err(|e| self.failed(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        let done = match &mut self.sink {
            Sink::Stdout(w) => w.flush(),
            Sink::InPlace(w) => w.flush(),
            Sink::Replace(r) => r.file.flush(),
        };
        done.map_err(|e| self.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary file's name, with `random` for the part the crate picks.
    fn temp_name(name: &str, pid: u32, random: &str) -> String {
        format!("{}{random}{TEMP_SUFFIX}", temp_prefix(name, pid))
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_regular_file_changes_only_on_commit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("dump.xml");
        std::fs::write(&p, b"yesterday").unwrap();
        let mut o = Output::create(Some(&p), &[]).unwrap();
        o.write_all(b"half a dump").unwrap();
        drop(o);
        assert_eq!(std::fs::read(&p).unwrap(), b"yesterday");
        assert_eq!(files_in(d.path()), ["dump.xml"]);

        let mut o = Output::create(Some(&p), &[]).unwrap();
        o.write_all(b"today").unwrap();
        o.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"today");
        assert_eq!(files_in(d.path()), ["dump.xml"]);
    }

    #[test]
    fn a_symlink_stays_a_symlink_and_its_file_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.xml");
        let link = d.path().join("link.xml");
        std::fs::write(&real, b"old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut o = Output::create(Some(&link), &[]).unwrap();
        o.write_all(b"new").unwrap();
        o.commit().unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
    }

    #[test]
    fn a_new_file_is_created_only_on_commit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new.xml");
        let o = Output::create(Some(&p), &[]).unwrap();
        // Named so that a later run can tell the leftover of a killed one.
        let [temp] = files_in(d.path()).try_into().unwrap();
        let rest = temp.strip_prefix(&temp_prefix("new.xml", std::process::id()));
        let random = rest.and_then(|r| r.strip_suffix(TEMP_SUFFIX)).unwrap();
        assert!(!random.is_empty() && random.bytes().all(|b| b.is_ascii_alphanumeric()));
        drop(o);
        assert!(!p.exists());
        assert!(files_in(d.path()).is_empty());
    }

    #[test]
    fn the_input_a_directory_and_a_dangling_link_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("meta.img");
        std::fs::write(&input, b"metadata").unwrap();
        let hard = d.path().join("hard");
        std::fs::hard_link(&input, &hard).unwrap();
        assert!(Output::create(Some(&hard), &[&input]).is_err());
        assert!(Output::create(Some(d.path()), &[]).is_err());
        let dangling = d.path().join("dangling");
        std::os::unix::fs::symlink(d.path().join("nowhere"), &dangling).unwrap();
        assert!(Output::create(Some(&dangling), &[]).is_err());
        assert_eq!(std::fs::read(&input).unwrap(), b"metadata");
    }

    #[test]
    fn a_device_is_written_in_place() {
        let mut o = Output::create(Some(Path::new("/dev/null")), &[]).unwrap();
        o.write_all(b"x").unwrap();
        drop(o);
        assert!(Path::new("/dev/null").exists());
        assert!(matches!(
            Output::create(Some(Path::new("-")), &[]).unwrap().sink,
            Sink::Stdout(_)
        ));
    }

    #[test]
    fn a_bare_name_lies_in_the_current_directory_which_is_synced() {
        assert_eq!(directory_of(Path::new("new.xml")), Path::new("."));
        assert_eq!(directory_of(Path::new("/tmp/new.xml")), Path::new("/tmp"));
        assert_eq!(directory_of(Path::new("d/new.xml")), Path::new("d"));
    }

    #[test]
    fn the_temporary_files_of_dead_runs_are_removed_and_no_others() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("dump.xml");
        // A process that has ended: its pid is free (and not reused this soon).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = d.path().join(temp_name("dump.xml", dead, "0"));
        let alive = d.path().join(temp_name("dump.xml", 1, "Ab3x9Z"));
        let other = d.path().join(temp_name("other.xml", dead, "Ab3x9Z"));
        let unlike = d.path().join(".dump.xml.notapid.0.tmp");
        for f in [&stale, &alive, &other, &unlike] {
            std::fs::write(f, b"half a dump").unwrap();
        }
        // A dead pid as seen from here, but a run elsewhere (another pid namespace) holds it.
        let held = d.path().join(temp_name("dump.xml", dead, "Q7r2Kp"));
        std::fs::write(&held, b"being written").unwrap();
        let holder = File::open(&held).unwrap();
        lock_temp(&holder);
        let mut o = Output::create(Some(&p), &[]).unwrap();
        o.write_all(b"today").unwrap();
        o.commit().unwrap();
        assert!(held.exists());
        drop(holder);
        assert!(!stale.exists());
        assert!(alive.exists() && other.exists() && unlike.exists());
        assert_eq!(std::fs::read(&p).unwrap(), b"today");
    }

    #[test]
    fn a_replaced_file_keeps_its_owner_group_and_mode() {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return; // only root can give a file to someone else
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("dump.xml");
        std::fs::write(&p, b"yesterday").unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mut o = Output::create(Some(&p), &[]).unwrap();
        o.write_all(b"today").unwrap();
        o.commit().unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (65534, 65534, 0o640));
        assert_eq!(std::fs::read(&p).unwrap(), b"today");
    }
}
