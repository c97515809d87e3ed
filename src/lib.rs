//! era-log-tools: offline tools for dm-era metadata and the dm-log disk dirty log, and a
//! library for Rust programs that read them.
//!
//! # The library
//!
//! What a backup or cache tool needs is at the top of the crate, and stays as it is within
//! a major version (README, "Library"):
//!
//! - [`EraMetadata`]: open dm-era metadata (a file, a device, or a live device's held
//!   metadata snapshot), read its superblock, list the origin blocks written since an era
//!   ([`WrittenSince`]);
//! - [`DirtyLog`]: read a mirror's disk log, list the regions out of sync;
//! - [`CacheMetadata`]: read dm-cache metadata (read only), list which cache block holds
//!   which origin block and whether it is dirty ([`Mappings`]).
//!
//! Noting the era a vendor snapshot was taken in, to invalidate a cache later:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let meta = dir.path().join("era-meta.img");
//! # era_log_tools::era::reader::example_metadata(&meta)?;
//! let md = era_log_tools::EraMetadata::open(&meta)?;
//! let sb = md.superblock();
//! println!(
//!     "era {}, {} blocks of {} sectors",
//!     sb.current_era, sb.nr_blocks, sb.data_block_size
//! );
//! # assert_eq!((sb.current_era, sb.nr_blocks, sb.data_block_size), (3, 4, 128));
//! # Ok(())
//! # }
//! ```
//!
//! Everything else is public for the suite's own tools and tests, and may change in any
//! release.
//!
//! # The house
//!
//! Data flows one way, device → blocks → typed structures → model → output, and each module
//! owns one step (docs/README.md draws it): [`pdata`] reads and writes the generic
//! persistent-data structures and names no format; [`xml`], [`json`], [`text`] and [`dm`]
//! are shared plumbing; [`era`] and [`log`] each hold a format (its on-disk types in
//! `format`) and the work of the tools built on it, [`cache`] a format the suite only
//! reads; [`identify`] tells what a device holds;
//! [`cli`] is what every tool shares and knows no format; [`commands`] holds each tool's
//! command line and run.
pub mod cache;
mod cast;
pub mod cli;
pub mod commands;
pub mod dm;
pub mod era;
pub mod identify;
pub mod interrupt;
pub mod json;
pub mod log;
pub mod pdata;
pub mod text;
pub mod xml;

pub use cache::error::CacheError;
pub use cache::reader::{CacheMetadata, Mapping, Mappings};
pub use era::reader::{EraMetadata, ReadError, WrittenSince};
pub use log::reader::DirtyLog;
pub use log::LogError;

/// The formats the suite knows, for telling what a device holds ([`identify`]). A new
/// format declares its [`identify::Format`] in its own module and joins this list.
pub static FORMATS: [&identify::Format; 3] = [
    &era::format::FORMAT,
    &log::format::FORMAT,
    &cache::format::FORMAT,
];
