//! era-log-tools: offline tools for dm-era metadata and the dm-log disk dirty log.
//!
//! Three layers: [`pdata`] reads and writes the generic persistent-data structures (and
//! [`xml`] reads the text both formats are dumped as), [`era`] and [`log`] know the two
//! formats, [`cli`] holds what the binaries share and [`commands`] their command lines.
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

/// The formats the suite knows, for telling what a device holds ([`identify`]). A new
/// format declares its [`identify::Format`] in its own module and joins this list.
pub static FORMATS: [&identify::Format; 2] = [&era::format::FORMAT, &log::format::FORMAT];
