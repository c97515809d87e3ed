//! Helpers shared by the integration tests, one module a job: running a program
//! ([`run`]), the fixtures and temporary files ([`fixtures`]), image bytes ([`bytes`]),
//! recording what a reader produces ([`record`]), the seeded generator ([`Rng`]), the log
//! tools' fixtures ([`log`]), a run's peak memory ([`memory`]), era metadata of any size
//! ([`synthetic`]) and the kernel lab ([`lab`]).

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]
// Each test crate uses a different subset of these helpers.
#![allow(dead_code, unused_imports)]

pub mod bytes;
pub mod fixtures;
pub mod lab;
pub mod log;
pub mod memory;
pub mod record;
pub mod run;
pub mod synthetic;

pub use bytes::*;
pub use fixtures::*;
pub use memory::peak_kib;
pub use record::{Event, Recorder};
pub use run::*;

/// The seeded generator of the tests: failures replay from their seed.
pub use era_log_tools::pdata::seeded::SplitMix as Rng;

/// `len` bytes that look random, from seed `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}
