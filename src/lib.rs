//! era-log-tools: offline tools for dm-era metadata and the dm-log disk dirty log.
//!
//! Three layers: [`pdata`] reads and writes the generic persistent-data structures (and
//! [`xml`] reads the text both formats are dumped as), [`era`] and [`log`] know the two
//! formats, and [`cli`] holds what the binaries share.
pub mod cli;
pub mod era;
pub mod log;
pub mod pdata;
pub mod xml;
