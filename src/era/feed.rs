//! Structures indexed by origin block (the era array, the writesets' bitsets), each read on a
//! thread of its own and handed over in order, so that a reader can merge them a range of
//! blocks at a time: the memory held is a few chunks per structure, whatever the origin's
//! size.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};

/// Words of a list built from the era array handed over at a time (256 KiB, 2 Mi blocks):
/// each hand-over may wake a thread, which costs microseconds.
pub const ERA_WORD_CHUNK: usize = 1 << 15;

/// Bitset words handed over at a time (64 KiB, 512 Ki blocks): a sixth of the era array's
/// blocks per hand-over, for an eighth of its memory.
pub const WORD_CHUNK: usize = 1 << 13;

/// Chunks sent and not yet taken, per structure: the reader runs this far ahead.
const IN_FLIGHT: usize = 2;

/// Values from an index on: what is handed over.
struct Run<V> {
    first: u64,
    values: Vec<V>,
}

impl<V> Run<V> {
    fn empty() -> Run<V> {
        Run {
            first: 0,
            values: Vec::new(),
        }
    }

    /// The index just past the last value.
    fn end(&self) -> u64 {
        self.first + self.values.len() as u64
    }
}

enum Message<V> {
    /// The next values.
    Values(Run<V>),
    /// The structure is damaged: nothing more comes.
    Failed,
}

/// Whether a feed goes on. For the reader's end, closed is the merger gone (what is pushed is
/// dropped); for the merger's, the reader done.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Open,
    Closed,
    /// The reader said the structure is damaged.
    Failed,
}

/// The end of a feed its reader fills.
pub struct Supply<V> {
    tx: SyncSender<Message<V>>,
    /// Chunks the merger is done with, to be filled again rather than allocated anew.
    back: Receiver<Vec<V>>,
    /// What is not handed over yet.
    pending: Run<V>,
    /// Values handed over at a time.
    chunk: usize,
    flow: Flow,
}

/// The end of a feed the merger takes values from, in order.
pub struct Feed<V> {
    rx: Receiver<Message<V>>,
    back: Sender<Vec<V>>,
    current: Taking<V>,
    flow: Flow,
}

/// The chunk a merger is taking values from: those from `taken` on are still to hand on.
struct Taking<V> {
    run: Run<V>,
    taken: usize,
}

impl<V> Taking<V> {
    /// The index of the next value, and the values left.
    fn left(&self) -> (u64, &[V]) {
        let at = self.run.first + self.taken as u64;
        (at, &self.run.values[self.taken..])
    }
}

/// A new feed of `chunk` values at a time: its reader's end and its merger's.
pub fn feed<V>(chunk: usize) -> (Supply<V>, Feed<V>) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let (back_tx, back_rx) = channel();
    let supply = Supply {
        tx,
        back: back_rx,
        pending: Run::empty(),
        chunk: chunk.max(1),
        flow: Flow::Open,
    };
    let feed = Feed {
        rx,
        back: back_tx,
        current: Taking {
            run: Run::empty(),
            taken: 0,
        },
        flow: Flow::Open,
    };
    (supply, feed)
}

impl<V: Copy> Supply<V> {
    /// Hands over the values at `first..first + values.len()`; indexes only grow. Dropped
    /// when the merger is gone or the structure was said damaged.
    pub fn push(&mut self, mut first: u64, mut values: &[V]) {
        if self.flow != Flow::Open {
            return;
        }
        if !self.pending.values.is_empty() && self.pending.end() != first {
            self.flush();
        }
        while !values.is_empty() {
            let p = &mut self.pending;
            if p.values.is_empty() {
                p.first = first;
            }
            let n = (self.chunk - p.values.len()).min(values.len());
            p.values.extend_from_slice(&values[..n]);
            first += n as u64;
            values = &values[n..];
            if p.values.len() == self.chunk {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        if self.pending.values.is_empty() || self.flow != Flow::Open {
            return;
        }
        let mut fresh = self
            .back
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.chunk));
        fresh.clear();
        let full = Run {
            first: self.pending.first,
            values: std::mem::replace(&mut self.pending.values, fresh),
        };
        if self.tx.send(Message::Values(full)).is_err() {
            self.flow = Flow::Closed;
        }
    }

    /// Says the structure is damaged: the merger stops where it needs a value not handed
    /// over yet.
    pub fn fail(&mut self) {
        if self.flow != Flow::Failed {
            self.flow = Flow::Failed;
            self.pending.values.clear();
            let _ = self.tx.send(Message::Failed);
        }
    }

    /// The end of the structure: what is held is handed over.
    pub fn finish(mut self) {
        if self.flow != Flow::Failed {
            self.flush();
        }
    }
}

impl<V> Feed<V> {
    /// Hands `f` the values below index `end` not handed yet, in order, with the index of
    /// the first of each run. A value never sent (past the end of a shorter structure, or
    /// in a gap) is skipped. Returns false when the reader said the structure is damaged.
    pub fn take_until(&mut self, end: u64, f: &mut dyn FnMut(u64, &[V])) -> bool {
        loop {
            let drained = self.current.left().1.is_empty();
            if drained && (self.flow != Flow::Open || !self.next_chunk()) {
                return self.flow != Flow::Failed;
            }
            let (at, left) = self.current.left();
            if at >= end {
                return true;
            }
            let n = crate::cast::index((end - at).min(left.len() as u64));
            f(at, &left[..n]);
            self.current.taken += n;
        }
    }

    /// Waits for the next chunk; false when none will come.
    fn next_chunk(&mut self) -> bool {
        match self.rx.recv() {
            Ok(Message::Values(run)) => {
                let done = std::mem::replace(&mut self.current, Taking { run, taken: 0 });
                // The reader may be gone: the chunk is then freed here.
                let _ = self.back.send(done.run.values);
                true
            }
            Ok(Message::Failed) => {
                self.flow = Flow::Failed;
                false
            }
            Err(_) => {
                self.flow = Flow::Closed;
                false
            }
        }
    }
}

#[cfg(test)]
// Tests build their values with casts of small, known numbers.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    const CHUNK: usize = WORD_CHUNK;

    fn collect(feed: &mut Feed<u32>, end: u64) -> (bool, Vec<(u64, u32)>) {
        let mut got = Vec::new();
        let ok = feed.take_until(end, &mut |first, v| {
            got.extend((first..).zip(v.iter().copied()))
        });
        (ok, got)
    }

    #[test]
    fn values_come_in_order_across_chunks_and_gaps() {
        let (mut s, mut f) = feed::<u32>(CHUNK);
        let reader = std::thread::spawn(move || {
            let all: Vec<u32> = (0..3 * CHUNK as u32).collect();
            s.push(0, &all[..CHUNK + 5]);
            // A gap of ten values.
            s.push(CHUNK as u64 + 15, &all[CHUNK + 15..]);
            s.finish();
        });
        let (ok, head) = collect(&mut f, 10);
        assert!(ok);
        assert_eq!(head, (0..10).map(|i| (i, i as u32)).collect::<Vec<_>>());
        let (ok, rest) = collect(&mut f, u64::MAX);
        assert!(ok);
        reader.join().unwrap();
        let want: Vec<(u64, u32)> = (10..3 * CHUNK as u64)
            .filter(|&i| !(CHUNK as u64 + 5..CHUNK as u64 + 15).contains(&i))
            .map(|i| (i, i as u32))
            .collect();
        assert_eq!(rest, want);
    }

    #[test]
    fn damage_stops_the_merger_and_a_gone_merger_stops_nothing() {
        let (mut s, mut f) = feed::<u32>(CHUNK);
        s.push(0, &[1, 2, 3]);
        s.fail();
        s.push(3, &[4]);
        s.finish();
        assert_eq!(collect(&mut f, 10), (false, vec![]));

        let (mut s, f) = feed::<u32>(CHUNK);
        drop(f);
        for i in 0..10 {
            s.push(i * CHUNK as u64, &vec![0; CHUNK]);
        }
        s.finish();
    }
}
