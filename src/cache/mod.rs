//! dm-cache metadata, read only: the superblock and which cache block holds which origin
//! block, dirty or not (the on-disk types in [`format`](mod@format), the public reader in [`reader`]);
//! which cache blocks hold written origin blocks ([`invalidate`]), and their invalidation in a
//! running cache ([`live`], with what device-mapper says of one in [`target`]).
//! The suite writes no cache metadata; [`example`] builds some for examples and tests.

mod cursor;
pub mod error;
pub mod example;
pub mod format;
pub mod invalidate;
pub mod live;
pub mod reader;
pub mod target;

#[cfg(test)]
mod tests;
