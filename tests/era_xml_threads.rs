//! The era XML reader is a library call: whatever way it ends, no thread it started is left
//! running, and an error in the first chunk is reported without waiting on the input for
//! more.
//!
//! This binary holds one test because it counts the threads of the whole process: a test
//! running beside it would start and end threads of its own.

mod common;

use std::io::{self, Cursor, Read};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::Recorder;
use era_log_tools::era::xml::read::{parse, ParseError, ParseOptions};

/// Hands out `data`, then blocks as a pipe whose writer stays open does, until the test
/// lets it go (a thread left reading it then ends too).
struct Stall {
    data: Cursor<Vec<u8>>,
    release: Receiver<()>,
}

impl Read for Stall {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 => {
                let _ = self.release.recv();
                Ok(0)
            }
            n => Ok(n),
        }
    }
}

/// Fails on the read after `data`.
struct Broken(Cursor<Vec<u8>>);

impl Read for Broken {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(io::Error::other("the disk went away")),
            n => Ok(n),
        }
    }
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

/// The thread count once it is at most `bound`, or whatever it is after two seconds: a
/// joined thread may still be listed for a moment after the join returns.
fn threads_settled_to(bound: usize) -> usize {
    let start = Instant::now();
    loop {
        let n = threads();
        if n <= bound || start.elapsed() > Duration::from_secs(2) {
            return n;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn small(chunk_size: usize) -> ParseOptions {
    ParseOptions {
        chunk_size,
        ..ParseOptions::default()
    }
}

fn run(input: Box<dyn Read + Send>, opts: &ParseOptions) -> Result<(), ParseError> {
    parse(input, &mut Recorder::failing(7), opts, &|_| {})
}

/// A document whose era array holds `eras`, one `<era>` line each, as era_dump writes it.
fn document(eras: &[u32]) -> String {
    let mut d = String::from(
        "<superblock uuid=\"\" block_size=\"128\" nr_blocks=\"4096\" current_era=\"9\">\n  \
         <writeset era=\"8\" nr_bits=\"4096\">\n",
    );
    for b in 0..4096 {
        d += &format!("    <bit block=\"{b}\" value=\"{}\"/>\n", b % 3 == 0);
    }
    d += "  </writeset>\n  <era_array>\n";
    for (b, e) in eras.iter().enumerate() {
        d += &format!("    <era block=\"{b}\" era=\"{e}\"/>\n");
    }
    d + "  </era_array>\n</superblock>\n"
}

/// Parses `input` on a thread of its own and gives up on it after ten seconds.
fn within_seconds(input: Stall, opts: ParseOptions) -> Result<(), ParseError> {
    let (tx, rx) = mpsc::channel();
    let parser = thread::spawn(move || {
        let _ = tx.send(run(Box::new(input), &opts));
    });
    let outcome = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("an error in the first chunk waited on the input for more");
    parser.join().expect("the parsing thread");
    outcome
}

#[test]
fn a_parse_leaves_no_thread_behind_and_an_early_error_does_not_wait_for_input() {
    let good = document(&[1; 4096]);
    // Starts what lives as long as the process (the digest's thread pool) and checks that
    // the document is good, so that the errors below are the ones put in.
    for opts in [small(64), ParseOptions::default()] {
        run(Box::new(Cursor::new(good.clone().into_bytes())), &opts).expect("a good document");
    }
    let before = threads_settled_to(0);

    // Not XML at all, from inputs that block after it: in a small chunk, and in the first
    // chunk of the default size, as from a pipe.
    let mut holds = Vec::new();
    let big_junk = "not era XML\n".repeat((4 << 20) / 12 + 1);
    for (junk, opts) in [
        ("not era XML\n".repeat(20), small(64)),
        (big_junk, ParseOptions::default()),
    ] {
        let (hold, release) = mpsc::channel::<()>();
        holds.push(hold);
        let input = Stall {
            data: Cursor::new(junk.into_bytes()),
            release,
        };
        let e = within_seconds(input, opts).expect_err("junk refused");
        assert!(matches!(e, ParseError::Xml(_)), "{e}");
    }

    // Errors of every kind, early and late, in chunks small and large.
    let mut late = vec![1; 4096];
    late[4000] = 7;
    let visitor_fails = document(&late);
    let mut syntax = good.clone();
    syntax.insert_str(good.len() - 40, "<bogus/>\n");
    let truncated = &good[..good.len() / 2];
    for opts in [small(64), small(4096), ParseOptions::default()] {
        for _ in 0..5 {
            let e = run(
                Box::new(Cursor::new(visitor_fails.clone().into_bytes())),
                &opts,
            );
            assert!(matches!(e, Err(ParseError::Visit(_))), "{e:?}");
            let e = run(Box::new(Cursor::new(syntax.clone().into_bytes())), &opts);
            assert!(matches!(e, Err(ParseError::Xml(_))), "{e:?}");
            let e = run(Box::new(Cursor::new(truncated.as_bytes().to_vec())), &opts);
            assert!(matches!(e, Err(ParseError::Xml(_))), "{e:?}");
            let e = run(Box::new(Broken(Cursor::new(truncated.into()))), &opts);
            assert!(matches!(e, Err(ParseError::Io(_))), "{e:?}");
        }
    }

    let after = threads_settled_to(before);
    // Lets a thread still reading a stalled input end, whatever the outcome.
    drop(holds);
    assert_eq!(
        after, before,
        "threads left running after the parses returned"
    );
}
