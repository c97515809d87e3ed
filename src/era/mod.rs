//! dm-era metadata: the superblock, writesets, the era array, and the tools built on them.

pub mod build;
pub mod check;
pub mod dump;
pub mod feed;
pub mod format;
pub mod invalidate;
pub mod live;
pub mod metadata;
pub mod metadata_size;
pub mod reader;
pub mod repair;
pub mod restore;
pub mod sink;
pub mod spool;
pub mod view;
pub mod writeset_spool;
pub mod xml;
