//! The dm-log disk dirty log's on-disk format (docs/dirty-log-format.md): the header, the
//! clean bitmap, and the sizes that follow from a log's geometry. The tools built on it
//! live beside this module, in [`crate::log`].

pub mod bitmap;
pub mod geometry;
pub mod header;
