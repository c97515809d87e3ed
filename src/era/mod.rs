//! dm-era metadata: the superblock, writesets, the era array, and the tools built on them.

pub mod check;
pub mod era_array;
pub mod metadata;
pub mod superblock;
pub mod view;
pub mod writeset;
