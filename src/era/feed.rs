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

enum Message<V> {
    /// Values from this index on.
    Values(u64, Vec<V>),
    /// The structure is damaged: nothing more comes.
    Failed,
}

/// The end of a feed its reader fills.
pub struct Supply<V> {
    tx: SyncSender<Message<V>>,
    /// Chunks the merger is done with, to be filled again rather than allocated anew.
    back: Receiver<Vec<V>>,
    /// The index of the first value of `buf`.
    first: u64,
    buf: Vec<V>,
    /// Values handed over at a time.
    chunk: usize,
    /// The merger is gone: what is pushed is dropped.
    gone: bool,
    failed: bool,
}

/// The end of a feed the merger takes values from, in order.
pub struct Feed<V> {
    rx: Receiver<Message<V>>,
    back: Sender<Vec<V>>,
    first: u64,
    chunk: Vec<V>,
    /// Values of `chunk` already handed on.
    taken: usize,
    ended: bool,
    failed: bool,
}

/// A new feed of `chunk` values at a time: its reader's end and its merger's.
pub fn feed<V>(chunk: usize) -> (Supply<V>, Feed<V>) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let (back_tx, back_rx) = channel();
    let supply = Supply {
        tx,
        back: back_rx,
        first: 0,
        buf: Vec::new(),
        chunk: chunk.max(1),
        gone: false,
        failed: false,
    };
    let feed = Feed {
        rx,
        back: back_tx,
        first: 0,
        chunk: Vec::new(),
        taken: 0,
        ended: false,
        failed: false,
    };
    (supply, feed)
}

impl<V: Copy> Supply<V> {
    /// Hands over the values at `first..first + values.len()`; indexes only grow. Dropped
    /// when the merger is gone or the structure was said damaged.
    pub fn push(&mut self, mut first: u64, mut values: &[V]) {
        if self.gone || self.failed {
            return;
        }
        if !self.buf.is_empty() && self.first + self.buf.len() as u64 != first {
            self.flush();
        }
        while !values.is_empty() {
            if self.buf.is_empty() {
                self.first = first;
            }
            let n = (self.chunk - self.buf.len()).min(values.len());
            self.buf.extend_from_slice(&values[..n]);
            first += n as u64;
            values = &values[n..];
            if self.buf.len() == self.chunk {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.gone {
            return;
        }
        let mut fresh = self
            .back
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.chunk));
        fresh.clear();
        let full = std::mem::replace(&mut self.buf, fresh);
        if self.tx.send(Message::Values(self.first, full)).is_err() {
            self.gone = true;
        }
    }

    /// Says the structure is damaged: the merger stops where it needs a value not handed
    /// over yet.
    pub fn fail(&mut self) {
        if !self.failed {
            self.failed = true;
            self.buf.clear();
            let _ = self.tx.send(Message::Failed);
        }
    }

    /// The end of the structure: what is held is handed over.
    pub fn finish(mut self) {
        if !self.failed {
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
            if self.taken == self.chunk.len() && (self.ended || self.failed || !self.next_chunk()) {
                return !self.failed;
            }
            let at = self.first + self.taken as u64;
            if at >= end {
                return true;
            }
            let left = self.chunk.len() - self.taken;
            let n = crate::cast::index((end - at).min(left as u64));
            f(at, &self.chunk[self.taken..self.taken + n]);
            self.taken += n;
        }
    }

    /// Waits for the next chunk; false when none will come.
    fn next_chunk(&mut self) -> bool {
        match self.rx.recv() {
            Ok(Message::Values(first, chunk)) => {
                let done = std::mem::replace(&mut self.chunk, chunk);
                // The reader may be gone: the chunk is then freed here.
                let _ = self.back.send(done);
                self.first = first;
                self.taken = 0;
                true
            }
            Ok(Message::Failed) => {
                self.failed = true;
                false
            }
            Err(_) => {
                self.ended = true;
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
