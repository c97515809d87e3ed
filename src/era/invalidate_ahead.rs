//! era_invalidate's list formatted while the era array is still being read, on another
//! core: the blocks below the walk's position have their final bit, so their runs can be
//! formatted then. Nothing is written before the whole metadata has been read (an
//! unreadable block, or an era above the current one found late, changes or voids the
//! answer, and a script must not get half a list), so what is formatted ahead waits in
//! memory, at most 32 MiB of it; the rest is formatted at the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::invalidate::{written_since_observed, WrittenBlocks};
use super::invalidate_output::{put_run, Format, Formatted, Units};
use super::view::View;
use crate::pdata::error::Error;
use crate::pdata::io::BlockIo;

/// Blocks per chunk handed to the formatting thread.
const CHUNK_BLOCKS: u64 = 1 << 16;
/// Output formatted ahead at most, whatever the answer: memory stays bounded.
const AHEAD_BYTES: usize = 32 << 20;
/// Chunks waiting for the formatting thread at most; when it lags, the reader goes on and
/// leaves the rest for the end.
const QUEUED: usize = 16;

/// The bits of the blocks `from..to`, in words starting at block `base`.
struct Chunk {
    base: u64,
    from: u64,
    to: u64,
    words: Vec<u64>,
}

/// Formats settled stretches of an answer on a thread of its own.
pub struct Ahead {
    next: u64,
    bytes: Arc<AtomicUsize>,
    queue: Option<SyncSender<Chunk>>,
    worker: Option<JoinHandle<(Vec<u8>, bool)>>,
}

impl Ahead {
    /// Formats in `format`, `k` units per block, for an answer of `nr_blocks` blocks; an
    /// answer of fewer than `min_blocks` is left to the end (a thread would cost more).
    pub fn new(format: Format, k: u64, nr_blocks: u64, min_blocks: u64) -> Ahead {
        let bytes = Arc::new(AtomicUsize::new(0));
        let mut ahead = Ahead {
            next: 0,
            bytes: bytes.clone(),
            queue: None,
            worker: None,
        };
        if nr_blocks < min_blocks {
            return ahead;
        }
        let (queue, chunks) = sync_channel(QUEUED);
        let worker = std::thread::Builder::new()
            .name("format-ahead".into())
            .spawn(move || format_chunks(chunks, format, k, &bytes));
        // Without a thread, everything is formatted at the end.
        if let Ok(worker) = worker {
            ahead.queue = Some(queue);
            ahead.worker = Some(worker);
        }
        ahead
    }

    /// Hands the formatting thread what of `set` is settled: the blocks below `below`, in
    /// chunks that no run crosses.
    pub fn settled(&mut self, set: &WrittenBlocks, below: u64) {
        let Some(queue) = &self.queue else {
            return;
        };
        while self.bytes.load(Ordering::Relaxed) < AHEAD_BYTES {
            let at = self.next + CHUNK_BLOCKS;
            if at >= below {
                return;
            }
            // A chunk ends where no run crosses: at `at`, or past the run through it.
            let cut = if set.contains(at - 1) && set.contains(at) {
                match set.runs_in(at, below).next() {
                    Some((_, end)) if end < below => end,
                    _ => return,
                }
            } else {
                at
            };
            let (w0, w1) = (self.next / 64, cut.div_ceil(64));
            let chunk = Chunk {
                base: w0 * 64,
                from: self.next,
                to: cut,
                words: set.words[w0 as usize..w1 as usize].to_vec(),
            };
            match queue.try_send(chunk) {
                Ok(()) => self.next = cut,
                Err(TrySendError::Full(_)) => return,
                Err(TrySendError::Disconnected(_)) => {
                    self.queue = None;
                    return;
                }
            }
        }
    }

    /// What was formatted: the runs of the blocks below its `next`; `None` when the thread
    /// failed (everything is then formatted at the end).
    pub fn finish(mut self) -> Option<Formatted> {
        self.queue = None;
        let Some(worker) = self.worker.take() else {
            return Some(Formatted::default());
        };
        let (bytes, any_run) = worker.join().ok()?;
        Some(Formatted {
            bytes,
            next: self.next,
            any_run,
        })
    }
}

/// The formatting thread: the runs of each chunk, in order, into one buffer.
fn format_chunks(
    chunks: Receiver<Chunk>,
    format: Format,
    k: u64,
    bytes: &AtomicUsize,
) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut any_run = false;
    for c in chunks {
        let part = WrittenBlocks {
            nr_blocks: c.to - c.base,
            words: c.words,
            warnings: Vec::new(),
        };
        for (b, e) in part.runs_in(c.from - c.base, c.to - c.base) {
            put_run(&mut out, format, k, (b + c.base, e + c.base), None, any_run);
            any_run = true;
        }
        bytes.store(out.len(), Ordering::Relaxed);
    }
    (out, any_run)
}

/// Answers below this many blocks are formatted at the end only.
const MIN_BLOCKS: u64 = 4 * CHUNK_BLOCKS;

/// [`super::invalidate::written_since`], with the start of the list formatted meanwhile in
/// `format` and `units`, ready for [`super::invalidate_output::write`].
pub fn written_since_formatted(
    io: &dyn BlockIo,
    view: &View,
    since: u32,
    format: Format,
    units: Units,
) -> Result<(WrittenBlocks, Option<Formatted>), Error> {
    let k = units.per_block(view.sb.data_block_size);
    let mut ahead = Ahead::new(format, k, view.nr_blocks(), MIN_BLOCKS);
    let (set, settled_held) =
        written_since_observed(io, view, since, &mut |set, below| ahead.settled(set, below))?;
    let formatted = ahead.finish();
    Ok((set, formatted.filter(|_| settled_held)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::era::invalidate_output::{write, Offline};

    fn rng(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// A set of `nr` blocks: long runs, single blocks, empty stretches, runs across chunk
    /// boundaries.
    fn random_set(nr: u64, seed: u64) -> WrittenBlocks {
        let mut s = seed;
        let mut words: Vec<u64> = (0..nr.div_ceil(64))
            .map(|_| match rng(&mut s) % 5 {
                0 => 0,
                1 => u64::MAX,
                2 => rng(&mut s) & rng(&mut s),
                _ => rng(&mut s),
            })
            .collect();
        for c in 1..nr / CHUNK_BLOCKS {
            let b = c * CHUNK_BLOCKS;
            words[(b / 64) as usize] |= 1;
            words[((b - 1) / 64) as usize] |= 1 << 63;
        }
        if nr % 64 != 0 {
            let last = words.len() - 1;
            words[last] &= (1u64 << (nr % 64)) - 1;
        }
        WrittenBlocks {
            nr_blocks: nr,
            words,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_list_formatted_ahead_is_the_list_formatted_at_the_end() {
        let read = Offline {
            since: 3,
            block_size: 8,
            era: 5,
            snapshot_era: None,
        };
        for (seed, nr) in [
            (1u64, 9 * CHUNK_BLOCKS + 77),
            (2, 5 * CHUNK_BLOCKS),
            (3, 1000),
        ] {
            let set = random_set(nr, seed);
            for (format, units) in [
                (Format::Xml, Units::Blocks),
                (Format::Text, Units::Sectors),
                (Format::Json, Units::Bytes),
            ] {
                let mut plain = Vec::new();
                write(&mut plain, &set, format, units, &read, None).unwrap();
                // Settled stretches of irregular lengths, as array blocks come.
                let k = units.per_block(8);
                let mut ahead = Ahead::new(format, k, nr, 0);
                let mut s = seed;
                let mut below = 0;
                while below < nr {
                    below = (below + 1 + rng(&mut s) % 40_000).min(nr);
                    ahead.settled(&set, below);
                }
                let formatted = ahead.finish().unwrap();
                if nr > 2 * CHUNK_BLOCKS {
                    assert!(formatted.next > 0, "nothing formatted ahead");
                }
                let mut streamed = Vec::new();
                write(&mut streamed, &set, format, units, &read, Some(&formatted)).unwrap();
                assert!(
                    streamed == plain,
                    "seed {seed}, {format:?}: the list formatted ahead differs"
                );
            }
        }
    }
}
