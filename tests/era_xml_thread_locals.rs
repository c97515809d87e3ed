//! The era XML reader's thread has ended, its thread-local values freed, when the parse
//! returns: nothing it allocated is still held, which is what a leak checker run after a
//! call sees. A thread that the call only waited for, not joined, frees its thread-locals
//! a moment after the call returns.
//!
//! This binary counts the allocations of the whole process, so it holds one test.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicIsize, Ordering};

use common::Recorder;
use era_log_tools::era::xml::read::{parse, ParseError, ParseOptions};

/// Counts the blocks allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: `ptr` came from `alloc` above, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn parse_bytes(doc: &[u8], opts: &ParseOptions) -> Result<(), ParseError> {
    parse(
        Box::new(Cursor::new(doc.to_vec())),
        &mut Recorder::default(),
        opts,
        &|_| {},
    )
}

#[test]
fn a_parse_that_fails_holds_nothing_once_it_returns() {
    // The markup reader alone: the fast path's thread pool keeps memory of its own.
    let opts = ParseOptions {
        chunk_size: 64,
        fast: false,
    };
    let mut doc = String::from(
        "<superblock uuid=\"\" block_size=\"8\" nr_blocks=\"64\" current_era=\"3\">\n",
    );
    doc += "  <writeset era=\"2\" nr_bits=\"64\">\n";
    for b in 0..64 {
        doc += &format!("    <bit block=\"{b}\" value=\"true\"/>\n");
    }
    let bad = doc.clone() + "  <bogus/>\n";
    // The calling thread's own waiting context, allocated once for good.
    let e = parse_bytes(bad.as_bytes(), &opts);
    assert!(matches!(e, Err(ParseError::Xml(_))), "{e:?}");

    let mut held = Vec::new();
    for round in 0..500 {
        let before = LIVE.load(Ordering::SeqCst);
        let refused = matches!(parse_bytes(bad.as_bytes(), &opts), Err(ParseError::Xml(_)));
        let after = LIVE.load(Ordering::SeqCst);
        assert!(refused, "round {round}: the bogus element was not refused");
        if after != before {
            held.push((round, after - before));
        }
    }
    assert!(
        held.is_empty(),
        "allocations still held when the parse returned (round, blocks): {held:?}"
    );
}
