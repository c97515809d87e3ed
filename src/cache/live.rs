//! A live cache: invalidating, in a running dm-cache, the cache blocks that hold origin data
//! written in given ranges, after the origin was rolled back under it.
//!
//! dm-cache has no metadata snapshot, and a running cache commits new mappings and reuses
//! freed metadata blocks under a reader (cache-metadata.md §6.4). A suspended cache writes
//! nothing, and its suspend commits: so the mapping is read with the cache suspended, which
//! holds its I/O for as long as one read of the mapping takes. The messages are sent with the
//! cache resumed: in passthrough mode, the only one in which the kernel takes
//! `invalidate_cblocks` (§10), the cache promotes nothing, so a cache block can only lose its
//! mapping between the read and the message (a write to it invalidates it), never gain
//! another: a block invalidated twice is skipped by the kernel, and no block the read did not
//! see can hold written data. The kernel commits the removals at the next commit, not at the
//! message: a last suspend commits them, and the mapping read then shows that no cache block
//! still holds a written block.
//!
//! Every refusal comes before the cache is touched; every way out (success, error, panic,
//! SIGINT/SIGTERM/SIGHUP through [`watched`]) leaves the cache resumed. After each resume,
//! and when a message is refused, the cache must still run the table inspected: a table
//! someone loaded while the run held the cache suspended goes live at the run's resume, and
//! a read or messages meant for one table say nothing of another. When a message is refused
//! or blocks remain, a cache whose metadata the kernel could no longer commit (it then shows
//! it read-only and flagged, or failed) is told as such: what the messages did lives in
//! memory only (the kernel aborted the transaction that held it), and running again is
//! refused until the metadata is repaired.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use super::error::CacheError;
use super::invalidate::{Invalidation, Matcher};
use super::reader::CacheMetadata;
use super::target::{CacheStatus, CacheTable, IoMode};
use crate::dm::{
    self, DevId, DeviceError, DeviceFault, DeviceMapper, DmDevice, DmError, NodeError, TargetLine,
};
use crate::interrupt::{signal_name, watched};
use crate::pdata::io::BlockIo;

/// The device a cache is stacked with, as the caller found it: the cache must sit directly
/// on it, or it directly on the cache, for cache blocks and its sectors to be numbered
/// alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Its name, as the user gave it.
    pub name: String,
    /// Its own device number.
    pub dev: DevId,
    /// The device it maps onto, sector for sector.
    pub origin: DevId,
}

/// How the cache and its neighbour are stacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stacking {
    /// The cache's origin is the neighbour.
    CacheOver,
    /// The neighbour's origin is the cache.
    CacheUnder,
}

/// How to run the invalidation.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheOptions {
    /// Read and match, send nothing.
    pub dry_run: bool,
    /// Catch SIGINT, SIGTERM and SIGHUP so that the cache is resumed. Tools set it; tests,
    /// which share their process with other tests, do not.
    pub handle_signals: bool,
}

/// What an invalidation found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The cache blocks that held written blocks when the mapping was read.
    pub invalidation: Invalidation,
    /// `invalidate_cblocks` messages sent. Unless it was a dry run, the mapping was read
    /// again after them and held no written block.
    pub messages: usize,
}

/// Why an invalidation was refused or failed.
#[derive(Debug)]
pub enum CacheFault {
    /// A device-mapper request failed.
    Dm(DmError),
    /// The table or status is not that of one cache target, or the target failed.
    Target(String),
    /// The cache is suspended.
    Suspended,
    /// A table is loaded and not yet live: the resume after the read would make it live.
    InactiveTable,
    /// The io mode is not passthrough; the dirty blocks the status counts.
    NotPassthrough(IoMode, u64),
    /// The metadata is read-only.
    ReadOnly,
    /// The metadata is flagged `needs_check`.
    NeedsCheck,
    /// The cache and the neighbour are not stacked directly on each other.
    NotStacked {
        /// The cache's own device number.
        cache: DevId,
        /// The cache's origin.
        cache_origin: DevId,
        /// The neighbour.
        neighbour: Neighbour,
    },
    /// The metadata device could not be opened.
    Node(NodeError),
    /// The metadata could not be read.
    Metadata(PathBuf, CacheError),
    /// The metadata does not agree with the table or the status.
    Mismatch(String),
    /// `invalidate_cblocks` was refused, after `sent` of the messages.
    Message {
        /// The error.
        error: DmError,
        /// Messages the kernel took before.
        sent: usize,
        /// Messages to send.
        of: usize,
    },
    /// Cache blocks still held written blocks after the messages.
    Remaining(u64),
    /// A signal stopped the run (and the cache was resumed).
    Interrupted {
        /// The signal.
        signal: i32,
        /// Messages sent before it.
        sent: usize,
    },
    /// The cache could not be resumed.
    Resume(DmError),
    /// The cache no longer runs the table inspected, after `sent` messages: someone loaded
    /// another, which went live at a resume (this run's, if it was loaded while the run held
    /// the cache suspended).
    TableChanged {
        /// Messages the kernel took before it was seen.
        sent: usize,
    },
    /// The kernel could not commit the cache's metadata during the run (a message was
    /// refused, or cache blocks still held written blocks in the metadata read last), and now
    /// shows it read-only, flagged or failed: running again is refused until it is repaired.
    MetadataFailed {
        /// What the status shows, in words.
        state: String,
        /// Messages the kernel took before.
        sent: usize,
        /// Cache blocks that still held written blocks in the metadata read last, if the
        /// mapping was read after the messages.
        remaining: Option<u64>,
    },
}

impl DeviceFault for CacheFault {
    fn describe(&self, f: &mut fmt::Formatter<'_>, device: &str) -> fmt::Result {
        match self {
            CacheFault::Dm(e) => write!(f, "{e}"),
            CacheFault::Target(s) | CacheFault::Mismatch(s) => f.write_str(s),
            CacheFault::Suspended => f.write_str(
                "the cache is suspended (someone may be changing its table); run again once \
                 it is resumed",
            ),
            CacheFault::InactiveTable => write!(
                f,
                "a table is loaded and not yet live (dmsetup table --inactive {device}); the \
                 resume after reading the mapping would make it live: run again once it is \
                 resumed or cleared"
            ),
            CacheFault::NotPassthrough(mode, dirty) => write!(
                f,
                "the cache is in {mode} mode; the kernel invalidates cache blocks only in \
                 passthrough mode: write back its dirty blocks until dmsetup status {device} \
                 counts none ({dirty} now), reload its table with passthrough instead of \
                 {mode}, and resume it"
            ),
            CacheFault::ReadOnly => write!(
                f,
                "the cache's metadata is read-only ('ro' in dmsetup status {device}): the \
                 kernel takes no message"
            ),
            CacheFault::NeedsCheck => write!(
                f,
                "the cache's metadata is flagged needs_check (dmsetup status {device}): the \
                 kernel takes no message until it is checked and repaired"
            ),
            CacheFault::NotStacked {
                cache,
                cache_origin,
                neighbour,
            } => write!(
                f,
                "the cache ({cache}, origin {cache_origin}) and {} ({}, origin {}) are not \
                 stacked directly on each other: their blocks cannot be matched",
                neighbour.name, neighbour.dev, neighbour.origin
            ),
            CacheFault::Node(e) => write!(f, "{e}"),
            CacheFault::Metadata(p, e) => write!(f, "{}: {e}", p.display()),
            CacheFault::Message { error, sent, of } => write!(
                f,
                "invalidate_cblocks refused after {sent} of {of} messages: {}; the cache is \
                 still in passthrough mode, run again",
                refusal(error)
            ),
            CacheFault::Remaining(n) => write!(
                f,
                "{n} cache blocks still hold written blocks after invalidate_cblocks; keep \
                 the cache in passthrough mode and run again"
            ),
            CacheFault::Interrupted { signal, sent } => {
                write!(
                    f,
                    "interrupted by {}; the cache is resumed; ",
                    signal_name(*signal)
                )?;
                match sent {
                    0 => f.write_str("nothing was invalidated"),
                    n => write!(
                        f,
                        "{n} invalidate_cblocks messages were sent: the cache is still in \
                         passthrough mode, run again"
                    ),
                }
            }
            CacheFault::Resume(e) => write!(
                f,
                "could not resume the cache: {e}; resume it with dmsetup resume {device}"
            ),
            CacheFault::TableChanged { sent } => {
                f.write_str(
                    "the cache's table changed during the run (a table loaded while the run \
                     held the cache suspended goes live when the run resumes it); ",
                )?;
                match sent {
                    0 => f.write_str("nothing was invalidated")?,
                    n => write!(f, "{n} invalidate_cblocks messages had been sent")?,
                }
                write!(
                    f,
                    ": see dmsetup table {device} and dmsetup status {device} before running \
                     again"
                )
            }
            CacheFault::MetadataFailed {
                state,
                sent,
                remaining,
            } => {
                write!(
                    f,
                    "the kernel could not commit the cache's metadata during the run, after \
                     {sent} invalidate_cblocks messages, and now reports it {state} (dmsetup \
                     status {device}; see the kernel log): "
                )?;
                match remaining {
                    Some(n) => write!(
                        f,
                        "the metadata on its device still maps {n} cache blocks to written \
                         blocks"
                    )?,
                    None => f.write_str(
                        "the metadata on its device may still map cache blocks to written \
                         blocks",
                    )?,
                }
                f.write_str(
                    "; do not use the cache in writeback or writethrough mode with it: check \
                     and repair the metadata, load the cache in passthrough mode and run again",
                )
            }
        }
    }
}

/// The kernel's refusal of a message, without the message's text (a thousand ranges).
fn refusal(e: &DmError) -> String {
    match e {
        DmError::Request { errno, .. } => io::Error::from_raw_os_error(*errno).to_string(),
        e => e.to_string(),
    }
}

impl From<DmError> for CacheFault {
    fn from(e: DmError) -> CacheFault {
        CacheFault::Dm(e)
    }
}

/// An invalidation's failure, naming the cache.
pub type CacheLiveError = DeviceError<CacheFault>;

/// Opens the metadata device of a suspended cache: its node, and the device read without
/// `O_EXCL` (the kernel holds it).
pub type Opener<'a> =
    &'a dyn Fn(DevId) -> Result<(PathBuf, Box<dyn BlockIo + Send + Sync>), CacheFault>;

/// Opens a cache's metadata device by its number, shared, with `O_DIRECT`.
pub fn open_metadata(dev: DevId) -> Result<(PathBuf, Box<dyn BlockIo + Send + Sync>), CacheFault> {
    let (path, io) = dm::open_metadata(dev).map_err(CacheFault::Node)?;
    Ok((path, Box::new(io)))
}

/// Hands the written origin ranges, in sectors and ascending, to a matcher.
pub type Feed<'a> = &'a dyn Fn(&mut Matcher<'_>) -> Result<(), CacheError>;

/// A live cache target found fit for invalidation.
#[derive(Debug, Clone)]
pub struct LiveCache {
    /// The cache.
    pub device: DmDevice,
    /// Its table.
    pub table: CacheTable,
    /// Its status when inspected.
    pub status: CacheStatus,
    /// How it is stacked with its neighbour.
    pub stacking: Stacking,
    /// Its table's lines as inspected: the table every step must still find live.
    lines: Vec<TargetLine>,
}

impl LiveCache {
    /// Checks, without changing anything, that the cache `device` can be invalidated: one
    /// cache target at sector 0, resumed, no table waiting, in passthrough mode, its
    /// metadata read-write and not flagged, stacked directly on `neighbour` or under it.
    pub fn inspect(
        dm: &dyn DeviceMapper,
        device: &DmDevice,
        neighbour: &Neighbour,
    ) -> Result<LiveCache, CacheLiveError> {
        inspect(dm, device, neighbour).map_err(|fault| CacheLiveError {
            device: device.to_string(),
            fault,
        })
    }

    /// Invalidates the cache blocks that hold the origin sectors `feed` gives, as the module
    /// documentation describes; with `dry_run` only reads and matches. The cache is
    /// inspected again first: it may have changed since [`LiveCache::inspect`].
    pub fn invalidate(
        &self,
        dm: &dyn DeviceMapper,
        neighbour: &Neighbour,
        opts: &CacheOptions,
        open: Opener<'_>,
        feed: Feed<'_>,
    ) -> Result<Outcome, CacheLiveError> {
        let run = || -> Result<Outcome, CacheFault> {
            let now = inspect(dm, &self.device, neighbour)?;
            let suspension = Suspension {
                dm,
                dev: &self.device,
                on: Mutex::new(false),
            };
            let signal = AtomicI32::new(0);
            let release = || match suspension.release() {
                Ok(true) => "; the cache was resumed".to_string(),
                Ok(false) => String::new(),
                Err(e) => format!(
                    "; {}",
                    CacheLiveError {
                        device: self.device.to_string(),
                        fault: e,
                    }
                    .what()
                ),
            };
            let result = watched(opts.handle_signals, &signal, &self.device, &release, || {
                now.run(&suspension, &signal, opts, open, feed)
            });
            // A cache left suspended is said first: it is what must be seen to at once.
            suspension.release()?;
            // The signal thread may have taken the signal when the work had already ended.
            let sig = match signal.load(Ordering::SeqCst) {
                0 if opts.handle_signals => crate::interrupt::stopped_by().unwrap_or(0),
                s => s,
            };
            if sig != 0 {
                let sent = match &result {
                    Ok(o) => o.messages,
                    Err(CacheFault::Interrupted { sent, .. }) => *sent,
                    Err(_) => 0,
                };
                return Err(CacheFault::Interrupted { signal: sig, sent });
            }
            result
        };
        run().map_err(|fault| CacheLiveError {
            device: self.device.to_string(),
            fault,
        })
    }

    /// The body of [`LiveCache::invalidate`], under a watch.
    fn run(
        &self,
        suspension: &Suspension<'_>,
        signal: &AtomicI32,
        opts: &CacheOptions,
        open: Opener<'_>,
        feed: Feed<'_>,
    ) -> Result<Outcome, CacheFault> {
        let interrupted = |sent| match signal.load(Ordering::SeqCst) {
            0 => Ok(()),
            s => Err(CacheFault::Interrupted { signal: s, sent }),
        };
        let invalidation = suspension.while_suspended(|| self.read(open, feed))?;
        self.unchanged(suspension.dm, 0)?;
        interrupted(0)?;
        if opts.dry_run {
            return Ok(Outcome {
                invalidation,
                messages: 0,
            });
        }
        let messages: Vec<String> = invalidation.messages().collect();
        for (sent, message) in messages.iter().enumerate() {
            interrupted(sent)?;
            if let Err(error) = suspension.dm.message(suspension.dev, 0, message) {
                // A refusal because another table went live, or because the kernel could not
                // commit the metadata, is told as such: running again is not the answer to it.
                self.unchanged(suspension.dm, sent)?;
                self.committing(suspension.dm, sent, None)?;
                return Err(CacheFault::Message {
                    error,
                    sent,
                    of: messages.len(),
                });
            }
        }
        let after = suspension.while_suspended(|| self.read(open, feed))?;
        self.unchanged(suspension.dm, messages.len())?;
        if after.cached_blocks > 0 {
            self.committing(suspension.dm, messages.len(), Some(after.cached_blocks))?;
            return Err(CacheFault::Remaining(after.cached_blocks));
        }
        Ok(Outcome {
            invalidation,
            messages: messages.len(),
        })
    }

    /// Checks that the cache still runs the table inspected, `sent` messages into the run:
    /// a read of the mapping and the messages mean something only for that table.
    fn unchanged(&self, dm: &dyn DeviceMapper, sent: usize) -> Result<(), CacheFault> {
        if dm.table(&self.device)? == self.lines {
            Ok(())
        } else {
            Err(CacheFault::TableChanged { sent })
        }
    }

    /// Checks, when the run went wrong `sent` messages into it, that the kernel still commits
    /// the cache's metadata: a commit that failed (the kernel's log says which) leaves it
    /// read-only and flagged `needs_check`, or the target failed, and the messages it took
    /// then lived in memory only. A status that cannot be read says nothing more here.
    fn committing(
        &self,
        dm: &dyn DeviceMapper,
        sent: usize,
        remaining: Option<u64>,
    ) -> Result<(), CacheFault> {
        let Ok(lines) = dm.status(&self.device) else {
            return Ok(());
        };
        let failed = |l: &TargetLine| l.params.split_whitespace().eq(["Fail"]);
        let state = if lines.iter().any(failed) {
            "failed ('Fail')"
        } else {
            match CacheStatus::from_lines(&lines).map(|s| (s.read_only, s.needs_check)) {
                Ok((true, true)) => "read-only and flagged needs_check ('ro needs_check')",
                Ok((true, false)) => "read-only ('ro')",
                Ok((false, true)) => "flagged needs_check",
                Ok((false, false)) | Err(_) => return Ok(()),
            }
        };
        Err(CacheFault::MetadataFailed {
            state: state.to_string(),
            sent,
            remaining,
        })
    }

    /// Reads the suspended cache's mapping and matches `feed`'s ranges against it.
    fn read(&self, open: Opener<'_>, feed: Feed<'_>) -> Result<Invalidation, CacheFault> {
        let (path, io) = open(self.table.metadata)?;
        let path = path.as_path();
        let unreadable = |e| CacheFault::Metadata(path.to_path_buf(), e);
        let cache = CacheMetadata::from_io(io).map_err(unreadable)?;
        let sb = cache.superblock();
        if sb.data_block_size != self.table.block_size {
            return Err(CacheFault::Mismatch(format!(
                "the table's block size is {} sectors, the metadata's on {} {}",
                self.table.block_size,
                path.display(),
                sb.data_block_size
            )));
        }
        if u64::from(sb.cache_blocks) != self.status.cache_blocks {
            return Err(CacheFault::Mismatch(format!(
                "the status counts {} cache blocks, the metadata on {} {}",
                self.status.cache_blocks,
                path.display(),
                sb.cache_blocks
            )));
        }
        // A suspend commits with the clean flag unless writing the cache's state failed.
        if !sb.clean_shutdown() {
            return Err(CacheFault::Mismatch(format!(
                "the metadata on {} was not committed cleanly when the cache was suspended",
                path.display()
            )));
        }
        let mut matcher = Matcher::new(&cache);
        feed(&mut matcher).map_err(unreadable)?;
        matcher.finish().map_err(unreadable)
    }
}

/// The checks of [`LiveCache::inspect`].
fn inspect(
    dm: &dyn DeviceMapper,
    device: &DmDevice,
    neighbour: &Neighbour,
) -> Result<LiveCache, CacheFault> {
    let info = dm.info(device)?;
    if !info.active_table {
        return Err(CacheFault::Target("the device has no table loaded".into()));
    }
    if info.suspended {
        return Err(CacheFault::Suspended);
    }
    if info.inactive_table {
        return Err(CacheFault::InactiveTable);
    }
    let lines = dm.table(device)?;
    let table = CacheTable::from_lines(&lines).map_err(CacheFault::Target)?;
    let status = CacheStatus::from_lines(&dm.status(device)?).map_err(CacheFault::Target)?;
    if status.needs_check {
        return Err(CacheFault::NeedsCheck);
    }
    if status.read_only {
        return Err(CacheFault::ReadOnly);
    }
    if status.io_mode != IoMode::Passthrough {
        return Err(CacheFault::NotPassthrough(status.io_mode, status.dirty));
    }
    if status.block_size != table.block_size {
        return Err(CacheFault::Mismatch(format!(
            "the table's block size is {} sectors, the status's {}",
            table.block_size, status.block_size
        )));
    }
    let stacking = if table.origin == neighbour.dev {
        Stacking::CacheOver
    } else if neighbour.origin == info.dev {
        Stacking::CacheUnder
    } else {
        return Err(CacheFault::NotStacked {
            cache: info.dev,
            cache_origin: table.origin,
            neighbour: neighbour.clone(),
        });
    };
    Ok(LiveCache {
        device: device.clone(),
        table,
        status,
        stacking,
        lines,
    })
}

/// The cache suspended by this run, resumed exactly once: by the run, by the signal watcher,
/// or when the suspension goes away (a panic).
struct Suspension<'a> {
    dm: &'a dyn DeviceMapper,
    dev: &'a DmDevice,
    on: Mutex<bool>,
}

impl Suspension<'_> {
    /// Runs `work` with the cache suspended, and resumes it.
    fn while_suspended<T>(
        &self,
        work: impl FnOnce() -> Result<T, CacheFault>,
    ) -> Result<T, CacheFault> {
        {
            let mut on = self.on.lock().unwrap_or_else(|e| e.into_inner());
            self.dm.suspend(self.dev)?;
            *on = true;
        }
        let value = work();
        self.release()?;
        value
    }

    /// Resumes the cache if this run suspended it; whether it did.
    fn release(&self) -> Result<bool, CacheFault> {
        let mut on = self.on.lock().unwrap_or_else(|e| e.into_inner());
        if !*on {
            return Ok(false);
        }
        self.dm.resume(self.dev).map_err(CacheFault::Resume)?;
        *on = false;
        Ok(true)
    }
}

impl Drop for Suspension<'_> {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

#[cfg(test)]
mod tests;
