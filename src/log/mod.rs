//! The dm-log disk dirty log (the region log of the `mirror` target).
//!
//! Layout (docs/dirty-log-format.md §3): a 16-byte little-endian header `{magic "MiRr",
//! version 2, nr_regions}` at offset 0, one clean bit per region from byte 1024 (least
//! significant bit first, 1 = in sync), the whole rounded up to the log device's logical
//! block size (`buf_size`), which the kernel reads and writes in one I/O.
//!
//! [`format`](mod@format) holds the on-disk structures and sizes; [`image`]
//! checks a log the way the kernel reads it, and [`stream`] reads its bits in bounded
//! pieces; [`dump`], [`restore`], [`repair`] and [`resync`]
//! are the library halves of `log_dump`, `log_restore` and `log_repair`; [`edit`] describes
//! the buffer a writer makes as edits of the old one, and [`run`] runs
//! the writing tools on devices the caller opened. [`backup`] is the file `log_repair
//! --backup` writes and [`undo`] puts back; [`interrupted`] says what a stopped repair left.

pub mod backup;
pub mod device;
pub mod dump;
pub mod edit;
pub mod error;
pub mod format;
pub mod image;
pub mod interrupted;
pub mod reader;
pub mod repair;
pub mod restore;
pub mod resync;
pub mod run;
pub mod stream;
pub mod undo;

pub use error::LogError;
