//! Writing down what a reader produces: the one recording sink of the tests, for the era
//! metadata stream ([`EraSink`]) and the XML reader's elements ([`XmlVisitor`]).

use std::collections::hash_map::DefaultHasher;
use std::hash::Hash;

use era_log_tools::era::sink::{EraSink, Summary};
use era_log_tools::era::xml::read::{VisitError, XmlVisitor};

/// One call a reader made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// The superblock's fields: block size, blocks, current era.
    Superblock(u32, u32, u32),
    /// A writeset of era `.0` and `.1` bits begins.
    WritesetBegin(u32, u32),
    /// A writeset's words (consecutive calls in one list).
    Words(Vec<u64>),
    /// One bit of a writeset, as the XML gives it.
    Bit(u32, bool),
    /// A run of set bits, as the XML gives it: first block, length.
    Marked(u32, u32),
    /// The writeset ends.
    WritesetEnd,
    /// The era array begins.
    EraArrayBegin,
    /// Era array values (consecutive calls in one list).
    Eras(Vec<u32>),
    /// One era array entry, as the XML gives it: block, era.
    Era(u32, u32),
    /// The era array ends.
    EraArrayEnd,
    /// The metadata ends.
    SuperblockEnd,
}

/// Records every call it is given, in order; or, made with [`Recorder::hashing`], hashes
/// each call instead, for readers whose streams are too large to keep.
#[derive(Default)]
pub struct Recorder<'a> {
    /// The calls so far.
    pub events: Vec<Event>,
    hasher: Option<&'a mut DefaultHasher>,
    refuse_era: Option<u32>,
    fail_era: Option<u32>,
}

impl<'a> Recorder<'a> {
    /// A recorder that adds each call to `h` instead of keeping it.
    pub fn hashing(h: &'a mut DefaultHasher) -> Recorder<'a> {
        Recorder {
            hasher: Some(h),
            ..Recorder::default()
        }
    }

    /// A recorder that refuses an XML era entry of era `era`, to see how a visitor's
    /// error comes out.
    pub fn refusing(era: u32) -> Recorder<'a> {
        Recorder {
            refuse_era: Some(era),
            ..Recorder::default()
        }
    }

    /// A recorder that fails to store an XML era entry of era `era`, as a full disk would.
    pub fn failing(era: u32) -> Recorder<'a> {
        Recorder {
            fail_era: Some(era),
            ..Recorder::default()
        }
    }

    fn note(&mut self, e: Event) {
        if let Some(h) = self.hasher.as_deref_mut() {
            // Each call on its own, as it came: how a stream is cut into calls is part of
            // what a hashed reader produced.
            e.hash(h);
            return;
        }
        // Kept calls are compared whole: where a reader cut its words is not content.
        match (self.events.last_mut(), e) {
            (Some(Event::Words(w)), Event::Words(more)) => w.extend(more),
            (Some(Event::Eras(v)), Event::Eras(more)) => v.extend(more),
            (_, e) => self.events.push(e),
        }
    }

    /// Notes `e`; a call that can fail never does here.
    fn take<E>(&mut self, e: Event) -> Result<(), E> {
        self.note(e);
        Ok(())
    }
}

impl Event {
    fn superblock(h: &Summary) -> Event {
        Event::Superblock(h.block_size, h.nr_blocks, h.current_era)
    }
}

/// The calls [`EraSink`] and [`XmlVisitor`] share, each noted as its event.
macro_rules! shared_calls {
    ($result:ty) => {
        fn writeset_begin(&mut self, era: u32, nr_bits: u32) -> $result {
            self.take(Event::WritesetBegin(era, nr_bits))
        }
        fn writeset_end(&mut self) -> $result {
            self.take(Event::WritesetEnd)
        }
        fn era_array_begin(&mut self) -> $result {
            self.take(Event::EraArrayBegin)
        }
        fn era_array_end(&mut self) -> $result {
            self.take(Event::EraArrayEnd)
        }
        fn superblock_end(&mut self) -> $result {
            self.take(Event::SuperblockEnd)
        }
    };
}

impl EraSink for Recorder<'_> {
    shared_calls!(std::io::Result<()>);

    fn superblock_begin(&mut self, h: &Summary) -> std::io::Result<()> {
        self.take(Event::superblock(h))
    }
    fn writeset_words(&mut self, words: &[u64]) -> std::io::Result<()> {
        self.take(Event::Words(words.to_vec()))
    }
    fn eras(&mut self, eras: &[u32]) -> std::io::Result<()> {
        self.take(Event::Eras(eras.to_vec()))
    }
}

impl XmlVisitor for Recorder<'_> {
    shared_calls!(Result<(), VisitError>);

    fn superblock(&mut self, h: Summary) -> Result<(), VisitError> {
        self.take(Event::superblock(&h))
    }
    fn bit(&mut self, block: u32, value: bool) -> Result<(), VisitError> {
        self.take(Event::Bit(block, value))
    }
    fn marked(&mut self, begin: u32, len: u32) -> Result<(), VisitError> {
        self.take(Event::Marked(begin, len))
    }
    fn era(&mut self, block: u32, era: u32) -> Result<(), VisitError> {
        if self.fail_era == Some(era) {
            return Err(VisitError::Io(std::io::Error::other("no space left")));
        }
        if self.refuse_era == Some(era) {
            return Err(VisitError::Invalid(format!(
                "the visitor refuses era {era}"
            )));
        }
        self.take(Event::Era(block, era))
    }
}
