//! era-log-tools: offline tools for dm-era metadata and the dm-log disk dirty log.
//!
//! Three layers: [`pdata`] reads and writes the generic persistent-data structures,
//! [`era`] and [`log`] know the two formats, and [`cli`] holds what the binaries share.
pub mod cli;
pub mod dm;
pub mod era;
pub mod log;
pub mod pdata;
