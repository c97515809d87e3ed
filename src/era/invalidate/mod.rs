//! "Blocks written since era N": the era array, the archived writesets and, when reading
//! block 0, the current writeset (docs/era-format.md §8).

pub mod listing;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use super::feed::{feed, Supply, ERA_WORD_CHUNK, WORD_CHUNK};
use super::view::{View, WritesetRef};
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::BlockIo;
use crate::pdata::report::{Problem, Problems, Severity};
use crate::pdata::walk::{Parent, Walker};

/// The answer: one bit per origin block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenBlocks {
    /// Origin blocks covered.
    pub nr_blocks: u64,
    /// Bit `b % 64` of word `b / 64` is set when block `b` was written since the era asked.
    pub words: Vec<u64>,
    /// Problems that did not stop the computation (stray bits, eras above the current
    /// one, an era asked that the metadata has not reached), to be shown to the user.
    pub warnings: Vec<Problem>,
    /// The era asked is past the metadata's current era: nothing can have been written in
    /// it yet. A saved era that is ahead of the metadata (re-created, restored from an older
    /// dump, another device) would make every later run list nothing.
    pub past_current_era: bool,
}

impl WrittenBlocks {
    fn empty(nr_blocks: u64) -> WrittenBlocks {
        WrittenBlocks {
            nr_blocks,
            words: vec![0; crate::cast::index(nr_blocks.div_ceil(64))],
            warnings: Vec::new(),
            past_current_era: false,
        }
    }

    fn set_all(&mut self) {
        self.words.fill(u64::MAX);
        self.mask_tail();
    }

    fn mask_tail(&mut self) {
        if self.nr_blocks % 64 != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << (self.nr_blocks % 64)) - 1;
            }
        }
    }

    /// ORs in a run of bitset words starting at word `first`, ignoring bits past the end.
    fn or_words(&mut self, first: u64, words: &[u64]) {
        let first = crate::cast::index(first);
        if first >= self.words.len() {
            return;
        }
        let n = words.len().min(self.words.len() - first);
        for (dst, src) in self.words[first..first + n].iter_mut().zip(words) {
            *dst |= src;
        }
        if first + n == self.words.len() {
            self.mask_tail();
        }
    }

    /// Lists block `b`; a block past the end is no origin block and is ignored. The tests'
    /// block-by-block reference for the word-wide marking.
    #[cfg(test)]
    fn mark(&mut self, b: u64) {
        if b < self.nr_blocks {
            self.words[(b / 64) as usize] |= 1 << (b % 64);
        }
    }

    /// The whole list as one span.
    pub fn span(&self) -> Span<'_> {
        Span {
            base: 0,
            len: self.nr_blocks,
            words: &self.words,
        }
    }

    /// Whether block `b` is listed.
    pub fn contains(&self, b: u64) -> bool {
        self.span().contains(b)
    }

    /// Where a stretch of the list that began before `at` may end with no run cut in two:
    /// `at`, or the end of the run through it.
    pub fn cut_near(&self, at: u64) -> u64 {
        self.span().cut_near(at)
    }

    /// Maximal runs of listed blocks, ascending, as half-open `[begin, end)` ranges.
    pub fn runs(&self) -> Runs<'_> {
        self.runs_in(0, self.nr_blocks)
    }

    /// The runs of the listed blocks among `from..to`, cut at both ends.
    pub fn runs_in(&self, from: u64, to: u64) -> Runs<'_> {
        self.span().runs_in(from, to, None)
    }
}

/// A stretch of the list: the blocks `base..base + len` (`base` a multiple of 64), one bit
/// a block from bit 0 of `words[0]`. Block numbers in and out are the origin's.
#[derive(Debug, Clone, Copy)]
pub struct Span<'a> {
    base: u64,
    len: u64,
    words: &'a [u64],
}

impl<'a> Span<'a> {
    /// The first block.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The block after the last.
    pub fn end(&self) -> u64 {
        self.base + self.len
    }

    /// Whether block `b` is in the span and listed.
    pub fn contains(&self, b: u64) -> bool {
        if b < self.base || b >= self.end() {
            return false;
        }
        let i = b - self.base;
        self.words[crate::cast::index(i / 64)] >> (i % 64) & 1 == 1
    }

    /// Where a stretch of the span that began before `at` may end with no run cut in two:
    /// `at`, or the end (within the span) of the run through it.
    pub fn cut_near(&self, at: u64) -> u64 {
        if at <= self.base || at >= self.end() || !(self.contains(at - 1) && self.contains(at)) {
            return at;
        }
        self.runs_in(at, self.end(), None)
            .next()
            .map_or(at, |(_, end)| end)
    }

    /// Where the run through the span's last block begins: in the span, or at `carry`
    /// (a run that began before it) when every block of the span is listed. The span's
    /// last block must be listed.
    pub(super) fn last_run_start(&self, carry: Option<u64>) -> u64 {
        let n = crate::cast::index(self.len.div_ceil(64));
        for i in (0..n).rev() {
            let valid = match (i + 1) * 64 > crate::cast::index(self.len) {
                true => (1u64 << (self.len % 64)) - 1,
                false => u64::MAX,
            };
            let clear = !self.words[i] & valid;
            if clear != 0 {
                return self.base + i as u64 * 64 + 64 - clear.leading_zeros() as u64;
            }
        }
        carry.unwrap_or(self.base)
    }

    /// The runs of the listed blocks among `from..to`, cut at `to`; with `carry`, a run
    /// that began there, before `from`, goes on into `from` when `from` is listed (and
    /// ends at `from` when it is not).
    pub fn runs_in(&self, from: u64, to: u64, carry: Option<u64>) -> Runs<'a> {
        Runs::new(self.words, self.base, from, to.min(self.end()), carry)
    }
}

/// Reports the era array values the walk did not reach, from block `next` to `first` (where
/// the values it reached go on): a hole in the array's tree.
fn report_gap(w: &mut Walker<'_>, name: &str, next: u64, first: u64) {
    if first != next {
        let what = format!("no values for blocks {next} to {first}");
        w.report(
            Severity::Error,
            Error::structure(name, Fault::Invalid(what)),
        );
    }
}

/// Turns the era array's values, handed in order, into the words of the list: bit `b` set
/// when block `b`'s era is `since` or later (`since` above 0). Whole words are built 64
/// eras at a time, without a branch per block; the word the values end in waits for the
/// next ones. Notes the first word holding an era above `current`.
struct SinceWords {
    since: u32,
    current: u32,
    /// The block of the next value.
    next: u64,
    /// The bits of the values of the word `next` is in, before it.
    partial: u64,
    /// The first block of the first word with an era above `current`, if any.
    above_at: Option<u64>,
    /// The words completed by one call.
    words: Vec<u64>,
}

impl SinceWords {
    fn new(since: u32, current: u32) -> SinceWords {
        SinceWords {
            since,
            current,
            next: 0,
            partial: 0,
            above_at: None,
            words: Vec::new(),
        }
    }

    fn note(&mut self, above: bool, block: u64) {
        if above && self.above_at.is_none() {
            self.above_at = Some(block / 64 * 64);
        }
    }

    /// Takes the eras of blocks `self.next..` and returns the words they complete, with
    /// the index of the first, and where the first era above `current` is (see
    /// [`SinceWords::above_at`]).
    fn push(&mut self, mut eras: &[u32]) -> (u64, &[u64], Option<u64>) {
        let (since, current) = (self.since, self.current);
        let mut b = self.next;
        let first_word = b / 64;
        self.words.clear();
        if b % 64 != 0 {
            let n = crate::cast::index(64 - b % 64).min(eras.len());
            let (bits, above) = padded_since_bits(&eras[..n], since, current);
            self.note(above, b);
            self.partial |= bits << (b % 64);
            eras = &eras[n..];
            b += n as u64;
            if b % 64 == 0 {
                self.words.push(std::mem::take(&mut self.partial));
            }
        }
        let mut chunks = eras.chunks_exact(64);
        for chunk in &mut chunks {
            let (bits, above) = since_bits(chunk, since, current);
            self.note(above, b);
            self.words.push(bits);
            b += 64;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let (bits, above) = padded_since_bits(rest, since, current);
            self.note(above, b);
            self.partial = bits;
            b += rest.len() as u64;
        }
        self.next = b;
        (first_word, &self.words, self.above_at)
    }

    /// The word the values ended in, if they ended inside one, with its index.
    fn last(&self) -> Option<(u64, u64)> {
        (self.next % 64 != 0).then_some((self.next / 64, self.partial))
    }
}

/// For 64 eras: bit `j` set when `eras[j] >= since` (`since` above 0), and whether any is
/// above `current`. Four eras a compare on x86-64 (whose baseline has the instructions), the
/// results of sixteen packed into one mask.
#[cfg(all(target_arch = "x86_64", not(portable)))]
fn since_bits(eras: &[u32], since: u32, current: u32) -> (u64, bool) {
    use std::arch::x86_64::*;
    assert_eq!(eras.len(), 64);
    // Unsigned comparisons as signed ones: the top bit of both sides flipped, the bits then
    // read as an i32 (the wrap is the point).
    #[allow(clippy::cast_possible_wrap)]
    let flip = |v: u32| (v ^ 1 << 31) as i32;
    let mut bits = 0u64;
    // SAFETY: SSE2 is part of x86-64; each load reads 4 of the 64 values asserted present.
    unsafe {
        let top = _mm_set1_epi32(i32::MIN);
        let at_least = _mm_set1_epi32(flip(since - 1));
        let above = _mm_set1_epi32(flip(current));
        let mut over = _mm_setzero_si128();
        for sixteen in 0..4 {
            let mut ge = [_mm_setzero_si128(); 4];
            for (k, g) in ge.iter_mut().enumerate() {
                let v = _mm_loadu_si128(eras.as_ptr().add(16 * sixteen + 4 * k).cast());
                let v = _mm_xor_si128(v, top);
                *g = _mm_cmpgt_epi32(v, at_least);
                over = _mm_or_si128(over, _mm_cmpgt_epi32(v, above));
            }
            // Each compare gives 0 or -1 a lane, which the saturating packs keep: byte `j`
            // of the packed vector is the result of era `j` of the sixteen.
            let packed =
                _mm_packs_epi16(_mm_packs_epi32(ge[0], ge[1]), _mm_packs_epi32(ge[2], ge[3]));
            // One bit a byte of a 16-byte vector: the mask is below 2^16.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let mask = _mm_movemask_epi8(packed) as u16;
            bits |= u64::from(mask) << (16 * sixteen);
        }
        (bits, _mm_movemask_epi8(over) != 0)
    }
}

/// [`since_bits`] for fewer than 64 eras (the ends of an array block, whose 1018 eras
/// seldom start on a word): the missing ones count as era 0, below every `since` and no
/// current era. Without a branch per era, which random eras would mispredict.
fn padded_since_bits(eras: &[u32], since: u32, current: u32) -> (u64, bool) {
    if eras.is_empty() {
        return (0, false);
    }
    let mut padded = [0u32; 64];
    padded[..eras.len()].copy_from_slice(eras);
    since_bits(&padded, since, current)
}

/// [`since_bits`] where there is no vector version (or with `--cfg portable`, so that
/// CI tests this path on x86-64 too).
#[cfg(any(not(target_arch = "x86_64"), portable))]
fn since_bits(eras: &[u32], since: u32, current: u32) -> (u64, bool) {
    let bits = (eras.iter().enumerate()).fold(0u64, |m, (j, &v)| m | ((v >= since) as u64) << j);
    (bits, eras.iter().any(|&v| v > current))
}

/// Iterator over the runs of a [`Span`]: a word at a time, each run found from the word's
/// edges (where a block's bit differs from the one below it), a few instructions a run.
pub struct Runs<'a> {
    words: &'a [u64],
    end: u64,
    /// Index of the word whose edges are in `edges`.
    word: usize,
    /// That word's first block.
    start: u64,
    /// The edges of that word not yet taken.
    edges: u64,
    /// The start of a run that began and has not ended yet.
    open: Option<u64>,
}

impl<'a> Runs<'a> {
    /// The runs among blocks `from..end` of `words` (whose first block is `base`), cut at
    /// both ends unless a run is carried into `from` (see [`Span::runs_in`]).
    fn new(words: &'a [u64], base: u64, from: u64, end: u64, carry: Option<u64>) -> Runs<'a> {
        let word = crate::cast::index((from - base) / 64);
        let mut runs = Runs {
            words,
            end,
            word,
            start: base + word as u64 * 64,
            edges: 0,
            open: carry,
        };
        if from < end {
            // The block below `from` counts as listed when a run is carried into it, as not
            // listed otherwise.
            let below = carry.map_or(0, |_| 1u64 << (from % 64));
            let w = words[word] & u64::MAX << (from % 64);
            runs.edges = runs.clip(w ^ (w << 1 | below));
        }
        runs
    }

    /// `edges` of the current word without those at or past the end.
    fn clip(&self, edges: u64) -> u64 {
        if self.end < self.start + 64 {
            edges & ((1u64 << (self.end - self.start)) - 1)
        } else {
            edges
        }
    }
}

impl Iterator for Runs<'_> {
    type Item = (u64, u64);

    // Inlined into the formatting loops, where most of the time goes between numbers.
    #[inline(always)]
    fn next(&mut self) -> Option<(u64, u64)> {
        loop {
            while self.edges == 0 {
                if self.start + 64 >= self.end {
                    // A run still open ends at the end.
                    return self.open.take().map(|b| (b, self.end));
                }
                let below = self.words[self.word] >> 63;
                self.word += 1;
                self.start += 64;
                let w = self.words[self.word];
                self.edges = self.clip(w ^ (w << 1 | below));
            }
            let at = self.start + self.edges.trailing_zeros() as u64;
            self.edges &= self.edges - 1;
            match self.open.take() {
                Some(b) => return Some((b, at)),
                None => self.open = Some(at),
            }
        }
    }
}

/// Blocks merged at a time (a multiple of 64): their list takes 128 KiB.
pub const WINDOW_BLOCKS: u64 = 1 << 20;

/// What listing the blocks written since an era found, besides the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The era asked is past the metadata's current era (see
    /// [`WrittenBlocks::past_current_era`]).
    pub past_current_era: bool,
    /// Eras above the current one were found in the era array only in the window that
    /// begins at this block, after the windows before it had been handed on: every block
    /// is to be listed, those handed on included, and no window was handed on after them.
    pub wrapped_at: Option<u64>,
}

/// The error of a listing that found eras above the current one only from block `at` on
/// ([`Outcome::wrapped_at`]), after the blocks before were handed on.
pub fn wrapped_after_listing(view: &View, at: u64) -> Error {
    Error::structure(
        view.era_array_name(),
        crate::pdata::error::Fault::Invalid(format!(
            "eras above the current era {} from block {at} on: the era counter may have \
             wrapped around, so every block is to be taken as written, but the blocks \
             before were listed already; --written-since 0 lists every block",
            view.current_era()
        )),
    )
}

/// Why a listing stopped.
#[derive(Debug)]
pub enum ListError<E> {
    /// The metadata is damaged.
    Metadata(Error),
    /// Handing a window on failed (writing the output, say).
    Handing(E),
}

impl<E> From<Error> for ListError<E> {
    fn from(e: Error) -> Self {
        ListError::Metadata(e)
    }
}

/// Computes the blocks written in era `since` or later, as seen by `view`, and hands them to
/// `each` a window of [`WINDOW_BLOCKS`] at a time, in order, and the problems that do not
/// stop it (see [`WrittenBlocks::warnings`]) to `warn` as soon as they are known (an era
/// asked past the current one before any window, the rest at the end): the era array and each
/// writeset needed are read on threads of their own and merged as they come, so the memory
/// taken does not grow with the origin. Unreadable metadata is an error: a missing block
/// would be silent data loss for the caller. Windows handed on before damage was found are
/// not taken back: a caller that must not show a partial list keeps them until the end.
pub fn list_written_since<E: Send>(
    io: &dyn BlockIo,
    view: &View,
    since: u32,
    each: &mut dyn FnMut(Span) -> Result<(), E>,
    warn: &mut dyn FnMut(Problem),
) -> Result<Outcome, ListError<E>> {
    let era = view.current_era();
    let mut outcome = Outcome {
        past_current_era: false,
        wrapped_at: None,
    };
    if since > era {
        outcome.past_current_era = true;
        warn(Problem {
            severity: Severity::Warning,
            error: Error::structure(
                "superblock",
                crate::pdata::error::Fault::Invalid(format!(
                    "written since era {since}: the metadata's current era is {era}, so no \
                     block can have been written in era {since} yet and none is listed"
                )),
            ),
            hint: Some(
                "an era saved ahead of the metadata (metadata re-created or restored from an \
                 older dump, or another device) would list nothing on every run: check it"
                    .into(),
            ),
        });
    }
    let mut windows = Windows::new(view.nr_blocks());
    if since == 0 {
        while let Some(win) = windows.next_all() {
            each(win).map_err(ListError::Handing)?;
        }
        return Ok(outcome);
    }
    let mut w = view.walker(io);
    let top = w.top();
    let writesets = view.writesets(&mut w, top);
    if let Some(p) = w.problems().first_fatal() {
        return Err(ListError::Metadata(p.error.clone()));
    }
    let mut wrapped = writesets.iter().any(|ws| ws.era > era);
    let read: Vec<&WritesetRef> = writesets.iter().filter(|ws| ws.era >= since).collect();
    if view.nr_blocks() <= WINDOW_BLOCKS {
        let merged = one_window(&mut w, view, since, &read, wrapped, &mut windows, each);
        let merged = merged.map(|wrapped| (None, wrapped));
        return conclude(view, outcome, w.into_problems(), merged, warn);
    }
    // The first block of the first word of the era array with an era above the current one.
    let above_at = AtomicU64::new(u64::MAX);
    let (merged, problems) = std::thread::scope(|scope| {
        let mut bit_feeds = Vec::new();
        let mut readers = Vec::new();
        for ws in &read {
            let (mut supply, feed) = feed::<u64>(WORD_CHUNK);
            bit_feeds.push(feed);
            readers.push(scope.spawn(move || {
                let mut w = view.walker(io);
                let nr_bits = ws.disk.nr_bits as u64;
                w.walk_bitset(
                    &ws.name,
                    ws.disk.root,
                    nr_bits,
                    ws.parent,
                    &mut |w, f, v| supply_or_fail(&mut supply, w, f, v),
                );
                finish(supply, w)
            }));
        }
        let (mut supply, mut era_feed) = feed::<u64>(ERA_WORD_CHUNK);
        let above_at = &above_at;
        readers.push(scope.spawn(move || {
            let mut w = view.walker(io);
            era_words(&mut w, view, since, top, &mut |w, at, done, above| {
                // Published before the words that hold it.
                if let Some(b) = above {
                    above_at.fetch_min(b, Ordering::Release);
                }
                supply_or_fail(&mut supply, w, at, done)
            });
            finish(supply, w)
        }));
        let mut merged: Result<Option<u64>, E> = Ok(None);
        while let Some(win) = windows.next_empty() {
            let (lo, hi) = (win.base, win.base + win.list.nr_blocks);
            let mut intact = true;
            for feed in &mut bit_feeds {
                intact &= feed.take_until(hi.div_ceil(64), &mut |first, words| {
                    win.list.or_words(first - lo / 64, words)
                });
            }
            intact &= era_feed.take_until(hi.div_ceil(64), &mut |first, words| {
                win.list.or_words(first - lo / 64, words)
            });
            if !intact {
                break;
            }
            let above = above_at.load(Ordering::Acquire) < hi;
            if above && !wrapped {
                if lo > 0 {
                    merged = Ok(Some(lo));
                    break;
                }
                wrapped = true;
            }
            if wrapped {
                win.list.set_all();
            }
            if let Err(e) = each(win.span()) {
                merged = Err(e);
                break;
            }
        }
        // The readers go on to the end of what they read, handing nothing more: every
        // problem is found, as if nothing had stopped.
        drop(bit_feeds);
        drop(era_feed);
        let problems: Vec<Problems> = readers
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        (merged, problems)
    });
    let mut all = w.into_problems();
    for p in problems {
        all.append(p);
    }
    conclude(view, outcome, all, merged.map(|at| (at, wrapped)), warn)
}

/// [`list_written_since`] of an origin that fits in one window: the writesets and the era
/// array read one after the other by the walker `w` that read the writeset tree, straight
/// into the window. A thread for each costs more than the whole merge at this size (a
/// million blocks: 5.6 ms a run with threads, 4.1 without), and a walker for each faults its
/// buffers in anew. `wrapped`: a writeset's era is above the current one. Returns, when
/// handing the window on did not fail (the problems found are `w`'s), whether the list was
/// taken as wrapped: eras above the current one are never found late here, with no window
/// before the first.
fn one_window<E>(
    w: &mut Walker,
    view: &View,
    since: u32,
    read: &[&WritesetRef],
    mut wrapped: bool,
    windows: &mut Windows,
    each: &mut dyn FnMut(Span) -> Result<(), E>,
) -> Result<bool, E> {
    let Some(win) = windows.next_empty() else {
        return Ok(wrapped);
    };
    let list = &mut win.list;
    for ws in read {
        w.walk_bitset(
            &ws.name,
            ws.disk.root,
            ws.disk.nr_bits as u64,
            ws.parent,
            &mut |_, first, words| list.or_words(first, words),
        );
    }
    let top = w.top();
    let words = era_words(w, view, since, top, &mut |_, at, done, _| {
        list.or_words(at, done)
    });
    if w.problems().first_fatal().is_some() {
        return Ok(wrapped);
    }
    wrapped |= words.above_at.is_some();
    if wrapped {
        list.set_all();
    }
    each(win.span()).map(|()| wrapped)
}

/// Takes the list's words as [`era_words`] hands them on.
type WordsVisitor<'v, 'w> = dyn FnMut(&Walker<'w>, u64, &[u64], Option<u64>) + 'v;

/// Walks the era array below `top` with `w`, turning its values into the words of the list
/// ([`SinceWords`]). `hand` takes each run of finished words as `(walker, first word, words,
/// the first block of a word with an era above the current one, when the run holds one)`,
/// and last the word the array ends in. Returns the words' tally.
fn era_words<'w>(
    w: &mut Walker<'w>,
    view: &View,
    since: u32,
    top: Parent,
    hand: &mut WordsVisitor<'_, 'w>,
) -> SinceWords {
    let mut words = SinceWords::new(since, view.current_era());
    let (name, root) = (view.era_array_name(), view.sb.era_array_root);
    w.walk_array(
        &name,
        root,
        view.nr_blocks(),
        top,
        &mut |w, first, v: &[u32]| {
            report_gap(w, &name, words.next, first);
            let (at, done, above) = words.push(v);
            hand(w, at, done, above);
        },
    );
    if let Some((at, word)) = words.last() {
        hand(w, at, &[word], None);
    }
    words
}

/// The end of a listing: the first fatal problem found, else what went wrong handing the
/// windows on, else the outcome, the problems that did not stop it handed to `warn`.
/// `merged` is where eras above the current one were found late and whether the list was
/// taken as wrapped (a writeset's era or the era array's above the current one).
fn conclude<E>(
    view: &View,
    mut outcome: Outcome,
    all: Problems,
    merged: Result<(Option<u64>, bool), E>,
    warn: &mut dyn FnMut(Problem),
) -> Result<Outcome, ListError<E>> {
    let era = view.current_era();
    if let Some(p) = all.first_fatal() {
        return Err(ListError::Metadata(p.error.clone()));
    }
    let (wrapped_at, wrapped) = merged.map_err(ListError::Handing)?;
    outcome.wrapped_at = wrapped_at;
    for p in all.kept() {
        warn(p.clone());
    }
    if wrapped || outcome.wrapped_at.is_some() {
        warn(Problem {
            severity: Severity::Note,
            error: Error::structure(
                view.era_array_name(),
                crate::pdata::error::Fault::Invalid(format!(
                    "eras above the current era {era}: the era counter may have wrapped \
                     around, so every block is listed"
                )),
            ),
            hint: None,
        });
    }
    Ok(outcome)
}

/// Computes the blocks written in era `since` or later, as seen by `view`, as one list in
/// memory: one bit per origin block (256 MiB at the kernel's limit). Unreadable metadata
/// is an error: a missing block would be silent data loss for the caller.
pub fn written_since(io: &dyn BlockIo, view: &View, since: u32) -> Result<WrittenBlocks, Error> {
    let mut out = WrittenBlocks::empty(view.nr_blocks());
    let mut copy = |span: Span| -> Result<(), Infallible> {
        let at = crate::cast::index(span.base / 64);
        out.words[at..at + span.words.len()].copy_from_slice(span.words);
        Ok(())
    };
    let mut warnings = Vec::new();
    let mut warn = |p| warnings.push(p);
    let outcome = match list_written_since(io, view, since, &mut copy, &mut warn) {
        Ok(outcome) => outcome,
        Err(ListError::Metadata(e)) => return Err(e),
        Err(ListError::Handing(never)) => match never {},
    };
    if outcome.wrapped_at.is_some() {
        out.set_all();
    }
    out.warnings = warnings;
    out.past_current_era = outcome.past_current_era;
    Ok(out)
}

/// Hands values a walk read to the merger, unless the walk has found damage by now.
fn supply_or_fail<V: Copy>(supply: &mut Supply<V>, w: &Walker, first: u64, values: &[V]) {
    match w.problems().worst() {
        Some(Severity::Error) => supply.fail(),
        _ => supply.push(first, values),
    }
}

/// Ends a walk's feed, as damaged if it found damage; returns what it found.
fn finish<V: Copy>(mut supply: Supply<V>, w: Walker) -> Problems {
    match w.problems().worst() {
        Some(Severity::Error) => supply.fail(),
        _ => supply.finish(),
    }
    w.into_problems()
}

/// The windows of an origin, in order, each filled anew in one buffer.
struct Windows {
    nr_blocks: u64,
    win: Window,
}

/// A window being filled: the list of blocks `base..base + list.nr_blocks`, indexed from
/// `base`.
struct Window {
    base: u64,
    list: WrittenBlocks,
}

impl Windows {
    fn new(nr_blocks: u64) -> Windows {
        let win = Window {
            base: 0,
            list: WrittenBlocks::empty(0),
        };
        Windows { nr_blocks, win }
    }

    /// The next window, nothing listed in it.
    fn next_empty(&mut self) -> Option<&mut Window> {
        let w = &mut self.win;
        let next = w.base + w.list.nr_blocks;
        if next >= self.nr_blocks {
            return None;
        }
        let n = (self.nr_blocks - next).min(WINDOW_BLOCKS);
        w.base = next;
        w.list.nr_blocks = n;
        w.list.words.clear();
        w.list.words.resize(crate::cast::index(n.div_ceil(64)), 0);
        Some(w)
    }

    /// The next window, every block listed.
    fn next_all(&mut self) -> Option<Span<'_>> {
        let win = self.next_empty()?;
        win.list.set_all();
        Some(win.span())
    }
}

impl Window {
    fn span(&self) -> Span<'_> {
        Span {
            base: self.base,
            ..self.list.span()
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn set(nr_blocks: u64, blocks: &[u64]) -> WrittenBlocks {
        let mut s = WrittenBlocks::empty(nr_blocks);
        for &b in blocks {
            s.words[(b / 64) as usize] |= 1 << (b % 64);
        }
        s
    }

    #[test]
    fn runs_are_maximal_and_cross_word_boundaries() {
        let s = set(200, &[0, 1, 4, 5, 8, 63, 64, 65, 127, 128, 199]);
        let runs: Vec<_> = s.runs().collect();
        assert_eq!(
            runs,
            vec![(0, 2), (4, 6), (8, 9), (63, 66), (127, 129), (199, 200)]
        );
        assert_eq!(set(130, &[]).runs().count(), 0);
        let mut all = WrittenBlocks::empty(130);
        all.set_all();
        assert_eq!(all.runs().collect::<Vec<_>>(), vec![(0, 130)]);
        assert_eq!(
            s.runs_in(5, 64).collect::<Vec<_>>(),
            vec![(5, 6), (8, 9), (63, 64)]
        );
        assert_eq!(s.runs_in(64, 64).count(), 0);
    }

    #[test]
    fn cuts_fall_between_runs() {
        let s = set(200, &[4, 5, 63, 64, 65, 199]);
        assert_eq!(s.cut_near(5), 6, "inside a run: its end");
        assert_eq!(s.cut_near(4), 4, "at a run's start");
        assert_eq!(s.cut_near(64), 66, "across a word");
        assert_eq!(s.cut_near(100), 100);
        assert_eq!(s.cut_near(0), 0);
        assert_eq!(s.cut_near(200), 200);
        let full = set(130, &(0..130).collect::<Vec<_>>());
        assert_eq!(full.cut_near(70), 130, "a run to the end");
    }

    #[test]
    fn marking_by_era_agrees_with_marking_block_by_block() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for (nr, first, len) in [
            (1000, 0, 1000),
            (1000, 3, 997),
            (1000, 64, 300),
            (200, 150, 50),
            (70, 7, 63),
            (3000, 1018, 1018),
            (1000, 5, 10),
            (100, 90, 40),
        ] {
            let eras: Vec<u32> = (0..len)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Eras near the top of the range too: the comparisons are unsigned.
                    match rng % 10 {
                        8 => u32::MAX - (rng >> 40) as u32 % 4,
                        9 => (1 << 31) - 2 + (rng >> 40) as u32 % 4,
                        _ => (rng % 8) as u32,
                    }
                })
                .collect();
            for (since, current) in [
                (4, 7),
                (4, 6),
                (1, 0),
                (7, 9),
                (1 << 31, 1 << 31),
                ((1 << 31) - 1, u32::MAX - 2),
                (u32::MAX, u32::MAX - 1),
                (u32::MAX, u32::MAX),
            ] {
                let mut fast = WrittenBlocks::empty(nr);
                let mut words = SinceWords::new(since, current);
                words.next = first;
                // Handed in pieces of several lengths, as array blocks and chunks come.
                let mut above = None;
                for piece in eras.chunks(37 + len % 100) {
                    let (at, done, at_above) = words.push(piece);
                    fast.or_words(at, done);
                    above = at_above;
                }
                if let Some((at, word)) = words.last() {
                    fast.or_words(at, &[word]);
                }
                let mut slow = WrittenBlocks::empty(nr);
                for (b, &v) in (first..).zip(&eras) {
                    if v >= since {
                        slow.mark(b);
                    }
                }
                assert_eq!(fast, slow, "{nr} {first} {len} {since}");
                if since < 8 {
                    assert!(fast.words.iter().any(|&w| w != 0));
                }
                let want = (first..).zip(&eras).find(|(_, &v)| v > current);
                assert_eq!(above, want.map(|(b, _)| b / 64 * 64), "{nr} {first} {len}");
            }
        }
    }

    #[test]
    fn or_words_ignores_bits_past_the_end() {
        let mut s = WrittenBlocks::empty(70);
        s.or_words(0, &[1, u64::MAX, u64::MAX]);
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![(0, 1), (64, 70)]);
        assert!(s.contains(69) && !s.contains(70) && !s.contains(1));
    }
}
