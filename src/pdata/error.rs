//! Typed errors of the persistent-data layer: which structure, which block, what was wrong.

use std::fmt;

use super::checksum::BlockKind;

/// What is wrong with a block or a structure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Fault {
    /// The device could not be read (or written) there.
    #[error("read error: {0}")]
    Io(String),
    /// A block number points past what the device (or its space map) holds.
    #[error("block number out of range (the metadata has {limit} blocks)")]
    OutOfRange {
        /// Block numbers must be below this.
        limit: u64,
    },
    /// The checksum matches no known structure.
    #[error("bad checksum")]
    BadChecksum,
    /// The checksum is that of another kind of block.
    #[error("wrong block type (this is a {found})")]
    WrongType {
        /// The kind the checksum says.
        found: BlockKind,
    },
    /// The checksum is right but the block says it lives elsewhere.
    #[error("block number mismatch (the block says it is block {found})")]
    BlockNr {
        /// The block number the block holds.
        found: u64,
    },
    /// Any other broken rule, described in words.
    #[error("{0}")]
    Invalid(String),
}

/// A fault located in the metadata: `STRUCTURE, node at block 1234: bad checksum`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Error {
    /// The structure, as the format names it on the way from the superblock; empty when
    /// the block is the structure (a superblock).
    pub structure: String,
    /// The block at fault and the kind of block it should have been, if one is to blame.
    pub at: Option<(BlockKind, u64)>,
    /// What was wrong.
    pub fault: Fault,
}

impl Error {
    /// A fault of a whole structure rather than of one block.
    pub fn structure(structure: impl Into<String>, fault: Fault) -> Error {
        Error {
            structure: structure.into(),
            at: None,
            fault,
        }
    }

    /// A fault of one block of a structure.
    pub fn block(structure: impl Into<String>, kind: BlockKind, loc: u64, fault: Fault) -> Error {
        Error {
            structure: structure.into(),
            at: Some((kind, loc)),
            fault,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            // The words scripts written for thin-provisioning-tools look for.
            Some((kind, loc)) if kind.is_superblock() && self.fault == Fault::BadChecksum => {
                let prefix = if self.structure.is_empty() {
                    String::new()
                } else {
                    format!("{}, ", self.structure)
                };
                write!(
                    f,
                    "{prefix}superblock at block {loc}: bad checksum in superblock"
                )
            }
            Some((kind, loc)) if self.structure.is_empty() => {
                write!(f, "{kind} at block {loc}: {}", self.fault)
            }
            Some((kind, loc)) => write!(
                f,
                "{}, {} at block {}: {}",
                self.structure, kind, loc, self.fault
            ),
            None => write!(f, "{}: {}", self.structure, self.fault),
        }
    }
}

impl std::error::Error for Error {}

/// Which of a tool's files an error is about: what it reads, or what it writes. A
/// writer's errors say it, so that the tool names the right file without knowing the
/// error's variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The input.
    Input,
    /// The output.
    Output,
    /// Neither: a file of the tool's own (a temporary file), which the message names.
    Own,
}

/// An error that knows which of a tool's files it is about ([`Side`]).
pub trait Sided: std::error::Error + Send + Sync + 'static {
    /// Which file the error is about.
    fn side(&self) -> Side;
}

/// Results of the persistent-data layer.
pub type Result<T> = std::result::Result<T, Error>;

/// Why metadata could not be read, whatever its format: the file or device could not be
/// opened, or what it holds is damaged or not the format asked for.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file or device could not be opened.
    #[error("{}: {source}", path.display())]
    Open {
        /// What was opened.
        path: std::path::PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// The metadata is damaged, or not of the format asked for.
    #[error(transparent)]
    Metadata(#[from] Error),
}
