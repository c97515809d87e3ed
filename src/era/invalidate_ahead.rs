//! era_invalidate's list formatted while the era array is still being read: the blocks
//! below the walk's position have their final bit, so their runs can be formatted then.
//!
//! The settled blocks are cut into chunks that no run crosses and queued. A thread of its
//! own formats them; the reader formats some too when that thread falls behind, and once
//! everything is read both drain the queue, so that neither core waits for the other.
//! Each chunk's text is kept with its number and the list is put together in order at the
//! end.
//!
//! Nothing is written before the whole metadata has been read (an unreadable block, or an
//! era above the current one found late, changes or voids the answer, and a script must
//! not get half a list), so what is formatted ahead waits in memory, about 32 MiB of it at
//! most; the rest is formatted as it is written.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::invalidate::{written_since_observed, WrittenBlocks};
use super::invalidate_output::{put_run, Format, Units};
use super::view::View;
use crate::pdata::error::Error;
use crate::pdata::io::BlockIo;

/// Blocks per chunk.
const CHUNK_BLOCKS: u64 = 1 << 16;
/// Output formatted ahead at most, whatever the answer: memory stays bounded.
const AHEAD_BYTES: usize = 32 << 20;
/// Chunks waiting at most: when the formatting falls further behind, the reader goes on
/// and leaves the rest for the end.
const QUEUED: usize = 16;
/// Chunks waiting above which the reader formats one itself rather than read on.
const BACKLOG: usize = 2;
/// Answers below this many blocks are formatted at the end only.
const MIN_BLOCKS: u64 = 4 * CHUNK_BLOCKS;

/// Chunk number `index`: the bits of the blocks `from..to`, in words starting at block
/// `base`.
struct Chunk {
    index: usize,
    base: u64,
    from: u64,
    to: u64,
    words: Vec<u64>,
}

/// The chunks waiting, and whether more will come.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Chunk>,
    closed: bool,
}

/// What the reader and the formatting thread share.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Bytes formatted so far, by both.
    bytes: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pop(&self) -> Option<Chunk> {
        self.lock().chunks.pop_front()
    }
}

/// One thread's formatted chunks: their text, one after the other, and where each is.
struct Formatter {
    format: Format,
    k: u64,
    text: Vec<u8>,
    /// (chunk number, start, length) of each chunk with runs.
    places: Vec<(usize, usize, usize)>,
}

impl Formatter {
    fn new(format: Format, k: u64) -> Formatter {
        Formatter {
            format,
            k,
            text: Vec::new(),
            places: Vec::new(),
        }
    }

    /// Formats chunk `c`. Every JSON run gets a comma before it: the list's first one is
    /// dropped when it is written.
    fn format(&mut self, c: Chunk, shared: &Shared) {
        let start = self.text.len();
        let part = WrittenBlocks {
            nr_blocks: c.to - c.base,
            words: c.words,
            warnings: Vec::new(),
        };
        for (b, e) in part.runs_in(c.from - c.base, c.to - c.base) {
            put_run(
                &mut self.text,
                self.format,
                self.k,
                (b + c.base, e + c.base),
                None,
                true,
            );
        }
        let len = self.text.len() - start;
        if len > 0 {
            shared.bytes.fetch_add(len, Ordering::Relaxed);
            self.places.push((c.index, start, len));
        }
    }
}

/// The start of an answer's list, formatted while the answer was computed: the runs of
/// the blocks below `next`, in the format and units asked for.
#[derive(Default)]
pub struct Formatted {
    formatters: Vec<Formatter>,
    /// (formatter, place) of each chunk with runs, in the list's order.
    order: Vec<(usize, usize)>,
    /// The first block not covered.
    pub next: u64,
    /// Whether a run was formatted (JSON puts a comma before the next one).
    pub any_run: bool,
}

impl Formatted {
    fn new(formatters: Vec<Formatter>, next: u64) -> Formatted {
        let mut order: Vec<(usize, usize, usize)> = (formatters.iter().enumerate())
            .flat_map(|(f, fmt)| {
                (fmt.places.iter().enumerate()).map(move |(p, &(index, _, _))| (index, f, p))
            })
            .collect();
        order.sort_unstable();
        Formatted {
            any_run: !order.is_empty(),
            order: order.into_iter().map(|(_, f, p)| (f, p)).collect(),
            formatters,
            next,
        }
    }

    /// Writes the runs formatted, in order, as [`super::invalidate_output::write`] would
    /// have written them.
    pub fn write_to(&self, out: &mut dyn Write, format: Format) -> io::Result<()> {
        for (i, &(f, p)) in self.order.iter().enumerate() {
            let fmt = &self.formatters[f];
            let (_, start, len) = fmt.places[p];
            let text = &fmt.text[start..start + len];
            // The list's first JSON run has no comma before it.
            let skip = usize::from(i == 0 && format == Format::Json);
            out.write_all(text.get(skip..).unwrap_or_default())?;
        }
        Ok(())
    }
}

/// Formats settled stretches of an answer on two cores while the answer is computed.
pub struct Ahead {
    /// The first block not yet in a chunk.
    next: u64,
    chunks: usize,
    ahead_bytes: usize,
    shared: Arc<Shared>,
    /// The reader's own formatter; `None` when nothing is formatted ahead.
    own: Option<Formatter>,
    worker: Option<JoinHandle<Formatter>>,
}

impl Ahead {
    /// Formats in `format`, `k` units per block, for an answer of `nr_blocks` blocks, at
    /// most about `ahead_bytes` of it; an answer of fewer than `min_blocks` is left to the
    /// end (a thread would cost more).
    pub fn new(
        format: Format,
        k: u64,
        nr_blocks: u64,
        min_blocks: u64,
        ahead_bytes: usize,
    ) -> Ahead {
        let shared = Arc::new(Shared::default());
        let mut ahead = Ahead {
            next: 0,
            chunks: 0,
            ahead_bytes,
            shared: shared.clone(),
            own: None,
            worker: None,
        };
        if nr_blocks < min_blocks {
            return ahead;
        }
        let mut theirs = Formatter::new(format, k);
        let worker = std::thread::Builder::new()
            .name("format-ahead".into())
            .spawn(move || {
                while let Some(c) = next_chunk(&shared) {
                    theirs.format(c, &shared);
                }
                theirs
            });
        // Without a thread, everything is formatted at the end.
        if let Ok(worker) = worker {
            ahead.own = Some(Formatter::new(format, k));
            ahead.worker = Some(worker);
        }
        ahead
    }

    /// Queues what of `set` is settled, the blocks below `below`, in chunks that no run
    /// crosses; formats one here when the other thread is behind.
    pub fn settled(&mut self, set: &WrittenBlocks, below: u64) {
        if self.own.is_none() {
            return;
        }
        self.queue_settled(set, below);
        while self.shared.lock().chunks.len() > BACKLOG {
            self.format_one();
        }
    }

    fn queue_settled(&mut self, set: &WrittenBlocks, below: u64) {
        let mut queue = self.shared.lock();
        while self.shared.bytes.load(Ordering::Relaxed) < self.ahead_bytes
            && queue.chunks.len() < QUEUED
        {
            // The whole answer is settled at the end: its last chunk may be short.
            let at = (self.next + CHUNK_BLOCKS).min(set.nr_blocks);
            if at > below || at <= self.next || (at == below && below < set.nr_blocks) {
                break;
            }
            let Some(cut) = set.cut_near(at, below) else {
                break;
            };
            let (w0, w1) = (self.next / 64, cut.div_ceil(64));
            queue.chunks.push_back(Chunk {
                index: self.chunks,
                base: w0 * 64,
                from: self.next,
                to: cut,
                words: set.words[w0 as usize..w1 as usize].to_vec(),
            });
            self.chunks += 1;
            self.next = cut;
            self.shared.ready.notify_one();
        }
    }

    fn format_one(&mut self) {
        if let (Some(c), Some(own)) = (self.shared.pop(), self.own.as_mut()) {
            own.format(c, &self.shared);
        }
    }

    /// What was formatted: with the final answer `set`, everything both cores could format
    /// within the memory allowed; `None` without one (the answer was voided) or when the
    /// thread failed (everything is then formatted at the end).
    pub fn finish(mut self, set: Option<&WrittenBlocks>) -> Option<Formatted> {
        if self.own.is_none() {
            return set.map(|_| Formatted::default());
        }
        if let Some(set) = set {
            loop {
                self.queue_settled(set, set.nr_blocks);
                if self.shared.lock().chunks.is_empty() {
                    break;
                }
                self.format_one();
            }
        }
        self.close();
        let theirs = self.worker.take()?.join().ok()?;
        let own = self.own.take()?;
        set.map(|_| Formatted::new(vec![own, theirs], self.next))
    }

    /// Tells the formatting thread that no more chunks come, and drops those waiting.
    fn close(&self) {
        let mut queue = self.shared.lock();
        queue.closed = true;
        queue.chunks.clear();
        drop(queue);
        self.shared.ready.notify_all();
    }
}

impl Drop for Ahead {
    /// Not finished (the walk failed): the formatting thread is stopped, not left waiting.
    fn drop(&mut self) {
        self.close();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The next chunk for the formatting thread, waiting for one; `None` once the queue is
/// closed and empty.
fn next_chunk(shared: &Shared) -> Option<Chunk> {
    let mut queue = shared.lock();
    loop {
        if let Some(c) = queue.chunks.pop_front() {
            return Some(c);
        }
        if queue.closed {
            return None;
        }
        queue = shared
            .ready
            .wait(queue)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// [`super::invalidate::written_since`], with the list formatted meanwhile in `format` and
/// `units` (as much of it as memory allows), ready for
/// [`super::invalidate_output::write`].
pub fn written_since_formatted(
    io: &dyn BlockIo,
    view: &View,
    since: u32,
    format: Format,
    units: Units,
) -> Result<(WrittenBlocks, Option<Formatted>), Error> {
    let k = units.per_block(view.sb.data_block_size);
    let mut ahead = Ahead::new(format, k, view.nr_blocks(), MIN_BLOCKS, AHEAD_BYTES);
    let (set, settled_held) =
        written_since_observed(io, view, since, &mut |set, below| ahead.settled(set, below))?;
    let formatted = ahead.finish(settled_held.then_some(&set));
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
        // Everything formatted ahead, or only the first few chunks (the memory allowed
        // taken), the rest at the end.
        for (seed, nr, ahead_bytes) in [
            (1u64, 9 * CHUNK_BLOCKS + 77, AHEAD_BYTES),
            (2, 5 * CHUNK_BLOCKS, AHEAD_BYTES),
            (3, 1000, AHEAD_BYTES),
            (4, 9 * CHUNK_BLOCKS + 77, 100_000),
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
                let mut ahead = Ahead::new(format, k, nr, 0, ahead_bytes);
                let mut s = seed;
                let mut below = 0;
                while below < nr {
                    below = (below + 1 + rng(&mut s) % 40_000).min(nr);
                    ahead.settled(&set, below);
                }
                let formatted = ahead.finish(Some(&set)).unwrap();
                if ahead_bytes == AHEAD_BYTES {
                    assert_eq!(formatted.next, nr, "everything formatted ahead");
                } else {
                    assert!(
                        formatted.next > 0 && formatted.next < nr,
                        "{}",
                        formatted.next
                    );
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

    #[test]
    fn a_walk_that_fails_stops_the_formatting_thread() {
        let set = random_set(40 * CHUNK_BLOCKS, 6);
        let mut ahead = Ahead::new(Format::Text, 1, set.nr_blocks, 0, AHEAD_BYTES);
        ahead.settled(&set, 20 * CHUNK_BLOCKS);
        // Dropped without finish, as when an unreadable block ends the walk: the drop
        // returns once the thread has stopped, and does not wait for more chunks.
        let (done, dropped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(ahead);
            let _ = done.send(());
        });
        assert!(dropped
            .recv_timeout(std::time::Duration::from_secs(20))
            .is_ok());
    }

    #[test]
    fn a_voided_answer_stops_the_formatting_and_leaves_nothing() {
        let set = random_set(40 * CHUNK_BLOCKS, 5);
        let mut ahead = Ahead::new(Format::Xml, 1, set.nr_blocks, 0, AHEAD_BYTES);
        ahead.settled(&set, 39 * CHUNK_BLOCKS);
        assert!(ahead.finish(None).is_none());
    }
}
