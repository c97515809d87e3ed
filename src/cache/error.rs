//! Why dm-cache metadata could not be read.

use crate::pdata::error::ReadError;

/// Why dm-cache metadata could not be read. Each message names the structure at fault
/// (and its block); the binaries add the file name in front.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The file or device could not be opened, or the metadata is damaged or not dm-cache
    /// metadata.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The kernel flagged the metadata after a failed metadata operation: it rolled back to
    /// the last commit and will not load it for writing until it is checked.
    #[error(
        "superblock: needs_check is set (a metadata operation failed in the kernel); \
         check and repair the metadata before trusting its mappings"
    )]
    NeedsCheck,
    /// Written ranges handed to the matcher out of order: a fault of the caller, refused
    /// rather than leave the earlier sectors' cache blocks out of the answer.
    #[error(
        "era list: written sectors {start} to {end} come after sectors up to {after}: the \
         ranges must ascend (a bug: please report it)"
    )]
    Unordered {
        /// The range's first sector.
        start: u64,
        /// The sector after its last.
        end: u64,
        /// The sector after the last of the ranges before.
        after: u64,
    },
}

impl From<crate::pdata::error::Error> for CacheError {
    fn from(e: crate::pdata::error::Error) -> CacheError {
        CacheError::Read(ReadError::Metadata(e))
    }
}
