//! A live session: reading a running era target's metadata in one safe step.
//!
//! The session finds the target's metadata device from its table, optionally sends
//! `checkpoint` (and reads the era from the status line after it, as the kernel asks: a
//! checkpoint need not start a new era), sends `take_metadata_snap`, reads the held root
//! from the status line, checks it against block 0's `metadata_snap`, lets a reader read
//! through the snapshot (no `O_EXCL`, `O_DIRECT`), and sends `drop_metadata_snap` on every
//! way out: success, error, panic, SIGINT/SIGTERM/SIGHUP (through [`watched`]). A snapshot someone
//! else holds is refused, naming its root, unless the caller asks to use it (and then it is
//! left held). SIGKILL cannot be caught: a killed session leaves its snapshot held, and the
//! next one refuses to start until it is dropped.

pub mod target;

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use self::target::{EraStatus, EraTable};
use super::check::{check, CheckOptions};
use super::dump::{dump, DumpOptions};
use super::invalidate::{written_since, WrittenBlocks};
use super::metadata::Metadata;
use super::view::View;
use crate::dm::ioctl::Control;
use crate::dm::{
    self, DevId, DeviceError, DeviceFault, DeviceMapper, DmDevice, DmError, NodeError,
};
use crate::interrupt::{signal_name, watched, Interruptible};
use crate::pdata::io::BlockIo;
use crate::pdata::report::Problems;

/// How to run a session.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveOptions {
    /// Send `checkpoint` before taking the snapshot.
    pub checkpoint: bool,
    /// Read a snapshot that is already held (and leave it held) instead of refusing.
    pub use_held_snapshot: bool,
    /// Catch SIGINT, SIGTERM and SIGHUP so that the snapshot is dropped. Tools set it;
    /// tests, which share their process with other tests, do not.
    pub handle_signals: bool,
}

/// What a session found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The device as the user named it.
    pub device: String,
    /// The metadata device's node.
    pub metadata_dev: PathBuf,
    /// The target's table.
    pub table: EraTable,
    /// The era on the status line after the checkpoint (without one: before the snapshot).
    pub era: u32,
    /// Whether a checkpoint was sent.
    pub checkpoint: bool,
    /// The held snapshot's block.
    pub snapshot_root: u64,
    /// Whether this session took the snapshot (and dropped it).
    pub snapshot_taken: bool,
    /// The era that began when the snapshot was taken (the snapshot's `current_era`).
    pub snapshot_era: u32,
    /// Origin blocks the snapshot covers.
    pub snapshot_nr_blocks: u32,
}

impl SessionInfo {
    /// The `--written-since` value for the next incremental run: every write the snapshot
    /// does not cover is in this era or a later one.
    pub fn next_written_since(&self) -> u32 {
        self.snapshot_era
    }

    /// Size of the origin the target exposes, in sectors.
    pub fn origin_sectors(&self) -> u64 {
        self.table.length
    }
}

/// Why a session failed.
#[derive(Debug)]
pub enum LiveFault {
    /// A device-mapper request failed.
    Dm(DmError),
    /// The table is not that of one era target, or a line could not be read.
    Target(String),
    /// The device is suspended: the kernel would not answer era messages until resumed.
    Suspended,
    /// Someone else holds a metadata snapshot.
    SnapshotHeld(u64),
    /// `--checkpoint` with a snapshot taken before it.
    CheckpointWithHeld(u64),
    /// The metadata device could not be opened.
    Node(NodeError),
    /// The metadata does not agree with what device-mapper says.
    Mismatch(String),
    /// The metadata device could not be read.
    Metadata(PathBuf, crate::pdata::error::Error),
    /// The reader failed.
    Read(Box<dyn StdError + Send + Sync>),
    /// A signal stopped the session; `dropped` says whether the snapshot was dropped.
    Interrupted {
        /// The signal.
        signal: i32,
        /// The root of the snapshot dropped on the way out, if one was.
        dropped: Option<u64>,
    },
    /// The snapshot was dropped (or replaced) by someone else while it was in use.
    SnapshotLost(u64),
    /// The snapshot could not be dropped.
    Drop(u64, DmError),
}

impl fmt::Display for LiveFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f, "DEV")
    }
}

impl DeviceFault for LiveFault {
    fn describe(&self, f: &mut fmt::Formatter<'_>, device: &str) -> fmt::Result {
        match self {
            LiveFault::Dm(e) => write!(f, "{e}"),
            LiveFault::Target(s) => f.write_str(s),
            LiveFault::Suspended => f.write_str(
                "the device is suspended; an era target answers no message until it is \
                 resumed (dmsetup resume)",
            ),
            LiveFault::SnapshotHeld(root) => write!(
                f,
                "a metadata snapshot is already held (root {root}), by someone else; read it \
                 with --use-held-snapshot, or drop it (dmsetup message {device} 0 \
                 drop_metadata_snap) if nobody uses it"
            ),
            LiveFault::CheckpointWithHeld(root) => write!(
                f,
                "--checkpoint cannot apply to the metadata snapshot already held (root \
                 {root}), which was taken before it"
            ),
            LiveFault::Node(e) => write!(f, "{e}"),
            LiveFault::Mismatch(s) => f.write_str(s),
            LiveFault::Metadata(p, e) => write!(f, "{}: {e}", p.display()),
            LiveFault::Read(e) => write!(f, "{e}"),
            LiveFault::Interrupted { signal, dropped } => {
                write!(f, "interrupted by {}", signal_name(*signal))?;
                match dropped {
                    Some(root) => write!(f, "; metadata snapshot {root} dropped"),
                    None => Ok(()),
                }
            }
            LiveFault::SnapshotLost(root) => write!(
                f,
                "the metadata snapshot (root {root}) was dropped by someone else while it was \
                 in use; nothing read through it can be trusted"
            ),
            LiveFault::Drop(root, e) => write!(
                f,
                "could not drop metadata snapshot {root}: {e}; drop it with dmsetup message \
                 {device} 0 drop_metadata_snap"
            ),
        }
    }

    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            LiveFault::Read(e) => e.source(),
            _ => None,
        }
    }
}

/// A session's failure, naming the device.
pub type LiveError = DeviceError<LiveFault>;

impl From<DmError> for LiveFault {
    fn from(e: DmError) -> LiveFault {
        LiveFault::Dm(e)
    }
}

/// Opens the metadata device of a target: its node, and the device read without `O_EXCL`.
pub type Opener<'a> = &'a dyn Fn(DevId) -> Result<(PathBuf, Box<dyn BlockIo>), LiveFault>;

/// Opens a metadata device by its number, for reading a held snapshot.
pub fn open_metadata(dev: DevId) -> Result<(PathBuf, Box<dyn BlockIo>), LiveFault> {
    let (path, io) = dm::open_metadata(dev).map_err(LiveFault::Node)?;
    Ok((path, Box::new(io)))
}

/// The snapshot this session took, dropped exactly once: by the session's exit path, by the
/// signal watcher, or when the holder goes away (a panic).
struct Holder<'a> {
    dm: &'a dyn DeviceMapper,
    dev: &'a DmDevice,
    root: Mutex<Option<u64>>,
}

impl Holder<'_> {
    fn hold(&self, root: u64) {
        *self.root.lock().unwrap_or_else(|e| e.into_inner()) = Some(root);
    }

    /// Drops the snapshot if this session still holds it. One that the status line no
    /// longer shows as held is someone else's business now: it is left alone.
    fn release(&self) -> Result<Option<u64>, LiveFault> {
        let Some(root) = self.root.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(None);
        };
        // When the status cannot be read the drop is tried all the same.
        if let Ok(Ok(st)) = self.dm.status(self.dev).map(|l| EraStatus::from_lines(&l)) {
            if st.held != Some(root) {
                return Err(LiveFault::SnapshotLost(root));
            }
        }
        self.dm
            .message(self.dev, 0, "drop_metadata_snap")
            .map_err(|e| LiveFault::Drop(root, e))?;
        Ok(Some(root))
    }
}

impl Drop for Holder<'_> {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

fn status(dm: &dyn DeviceMapper, dev: &DmDevice) -> Result<EraStatus, LiveFault> {
    EraStatus::from_lines(&dm.status(dev)?).map_err(LiveFault::Target)
}

/// Runs `read` on the metadata of the live era target `dev`, through a held metadata
/// snapshot, as the module documentation describes. `open` opens the metadata device.
pub fn run_with<T, E>(
    dm: &dyn DeviceMapper,
    dev: &DmDevice,
    opts: &LiveOptions,
    open: Opener<'_>,
    read: impl FnOnce(&dyn BlockIo, &SessionInfo) -> Result<T, E>,
) -> Result<(T, SessionInfo), LiveError>
where
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    // One closure, so that every refusal and failure below is said of the device once.
    let session = || -> Result<(T, SessionInfo), LiveFault> {
        // Everything that can be refused is refused before the target is touched. The info
        // comes first: on a suspended era target a status request would wait for the resume.
        let info = dm.info(dev)?;
        if !info.active_table {
            return Err(LiveFault::Target("the device has no table loaded".into()));
        }
        if info.suspended {
            return Err(LiveFault::Suspended);
        }
        let table = EraTable::from_lines(&dm.table(dev)?).map_err(LiveFault::Target)?;
        let (metadata_dev, io) = open(table.metadata)?;
        let start = status(dm, dev)?;
        if let Some(root) = start.held {
            if !opts.use_held_snapshot {
                return Err(LiveFault::SnapshotHeld(root));
            }
            if opts.checkpoint {
                return Err(LiveFault::CheckpointWithHeld(root));
            }
        }

        let signal = AtomicI32::new(0);
        let holder = Holder {
            dm,
            dev,
            root: Mutex::new(None),
        };
        let release = || match holder.release() {
            Ok(Some(root)) => format!("; metadata snapshot {root} dropped"),
            Ok(None) => String::new(),
            Err(e) => format!("; {e}"),
        };
        let result = watched(opts.handle_signals, &signal, dev, &release, || {
            hold_and_read(
                dm,
                dev,
                opts,
                &table,
                start,
                &holder,
                &*io,
                &signal,
                metadata_dev,
                read,
            )
        });
        // The watcher may not have taken the signal yet when the reads stopped.
        let sig = match signal.load(Ordering::SeqCst) {
            0 if opts.handle_signals => crate::interrupt::stopped_by().unwrap_or(0),
            s => s,
        };
        let released = holder.release();
        if sig != 0 {
            return Err(LiveFault::Interrupted {
                signal: sig,
                dropped: released.ok().flatten(),
            });
        }
        let (value, info) = result?;
        released?;
        Ok((value, info))
    };
    session().map_err(|fault| LiveError {
        device: dev.to_string(),
        fault,
    })
}

/// The snapshot the session reads: the one held already (with `--use-held-snapshot`), or
/// one it takes, after a checkpoint if asked. Returns its root, the era to report, and
/// whether this session took it.
fn hold_snapshot(
    dm: &dyn DeviceMapper,
    dev: &DmDevice,
    opts: &LiveOptions,
    start: &EraStatus,
    holder: &Holder<'_>,
    interrupted: &dyn Fn() -> bool,
) -> Result<(u64, u32, bool), LiveFault> {
    if let Some(root) = start.held {
        return Ok((root, start.era, false));
    }
    let era = if opts.checkpoint {
        dm.message(dev, 0, "checkpoint")?;
        status(dm, dev)?.era
    } else {
        start.era
    };
    if interrupted() {
        return Err(LiveFault::Target("interrupted".into()));
    }
    if let Err(e) = dm.message(dev, 0, "take_metadata_snap") {
        // Someone took one between our status read and our message.
        return Err(match status(dm, dev).map(|s| s.held) {
            Ok(Some(root)) => LiveFault::SnapshotHeld(root),
            _ => e.into(),
        });
    }
    match status(dm, dev)?.held {
        Some(root) => {
            holder.hold(root);
            Ok((root, era, true))
        }
        None => Err(LiveFault::SnapshotLost(0)),
    }
}

#[allow(clippy::too_many_arguments)]
fn hold_and_read<T, E>(
    dm: &dyn DeviceMapper,
    dev: &DmDevice,
    opts: &LiveOptions,
    table: &EraTable,
    start: EraStatus,
    holder: &Holder<'_>,
    io: &dyn BlockIo,
    signal: &AtomicI32,
    metadata_dev: PathBuf,
    read: impl FnOnce(&dyn BlockIo, &SessionInfo) -> Result<T, E>,
) -> Result<(T, SessionInfo), LiveFault>
where
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    let interrupted = || signal.load(Ordering::SeqCst) != 0;
    let (root, era, taken) = hold_snapshot(dm, dev, opts, &start, holder, &interrupted)?;
    let unreadable = |e| LiveFault::Metadata(metadata_dev.clone(), e);
    let target_may_write = true;
    let md = Metadata::open(io, target_may_write).map_err(unreadable)?;
    if md.block0.metadata_snap != root {
        return Err(LiveFault::Mismatch(format!(
            "the status line shows metadata snapshot {root} held, but the superblock of {} \
             records {}",
            metadata_dev.display(),
            md.block0.metadata_snap
        )));
    }
    let snap = md.snapshot_superblock(io).map_err(unreadable)?;
    if snap.data_block_size != table.block_size {
        return Err(LiveFault::Mismatch(format!(
            "the table's block size is {} sectors, the metadata's {}",
            table.block_size, snap.data_block_size
        )));
    }
    let info = SessionInfo {
        device: dev.to_string(),
        metadata_dev,
        table: table.clone(),
        era,
        checkpoint: opts.checkpoint,
        snapshot_root: root,
        snapshot_taken: taken,
        snapshot_era: snap.current_era,
        snapshot_nr_blocks: snap.nr_blocks,
    };
    // Under a watch, a signal stops the reads at the next block.
    let guarded = Interruptible::new(io);
    let io: &dyn BlockIo = if opts.handle_signals { &guarded } else { io };
    let value = read(io, &info);
    // A snapshot that went away while it was read may have been reused under the reader.
    if status(dm, dev)?.held != Some(root) {
        holder.root.lock().unwrap_or_else(|e| e.into_inner()).take();
        return Err(LiveFault::SnapshotLost(root));
    }
    let value = value.map_err(|e| LiveFault::Read(e.into()))?;
    Ok((value, info))
}

/// Runs `read` through a snapshot of the live era target named `device` (a device-mapper
/// name or a path to its node), with the kernel's device-mapper.
pub fn run<T, E>(
    device: &str,
    opts: &LiveOptions,
    read: impl FnOnce(&dyn BlockIo, &SessionInfo) -> Result<T, E>,
) -> Result<(T, SessionInfo), LiveError>
where
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    let fail = |fault| LiveError {
        device: device.to_string(),
        fault,
    };
    let dev = DmDevice::parse(device).map_err(|e| fail(e.into()))?;
    let dm = Control::open().map_err(|e| fail(e.into()))?;
    run_with(&dm, &dev, opts, &open_metadata, read)
}

/// `era_invalidate --live`: the blocks written since era `since`, read through a snapshot.
pub fn invalidate(
    device: &str,
    opts: &LiveOptions,
    since: u32,
) -> Result<(WrittenBlocks, SessionInfo), LiveError> {
    run(device, opts, |io, _| {
        let view = View::open(io, true)?;
        written_since(io, &view, since)
    })
}

/// `era_dump --live`: the snapshot's XML into `out`.
pub fn dump_snapshot(
    device: &str,
    opts: &LiveOptions,
    dump_opts: &DumpOptions,
    out: &mut dyn io::Write,
) -> Result<(Problems, SessionInfo), LiveError> {
    let dump_opts = DumpOptions {
        metadata_snap: true,
        ..*dump_opts
    };
    run(device, opts, |io, _| dump(io, &dump_opts, out))
}

/// `era_check --live`: the check of the snapshot.
pub fn check_snapshot(
    device: &str,
    opts: &LiveOptions,
    check_opts: CheckOptions,
) -> Result<(Problems, SessionInfo), LiveError> {
    let check_opts = CheckOptions {
        metadata_snap: true,
        ..check_opts
    };
    run(device, opts, |io, _| {
        Ok::<_, io::Error>(check(io, check_opts))
    })
}

#[cfg(test)]
mod tests;
