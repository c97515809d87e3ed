//! `era_repair`: a salvaging dump fed straight into the builder, with no XML in between.

use crate::pdata::error::Side;
use std::fmt;

use super::build::{BuildError, EraBuilder};
use super::dump::{DumpError, DumpOptions, Source};
use crate::pdata::io::BlockIo;
use crate::pdata::report::Problems;

/// Why a repair failed.
#[derive(Debug)]
pub enum RepairError {
    /// The input's superblock is unusable, or writing through the builder failed.
    Read(DumpError),
    /// The output is too small, or finishing it failed.
    Build(BuildError),
}

impl RepairError {
    /// Which file the error is about.
    pub fn side(&self) -> Side {
        match self {
            RepairError::Read(_) => Side::Input,
            RepairError::Build(_) => Side::Output,
        }
    }
}

impl fmt::Display for RepairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepairError::Read(e) => e.fmt(f),
            RepairError::Build(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RepairError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RepairError::Read(e) => Some(e),
            RepairError::Build(e) => Some(e),
        }
    }
}

/// Writes to `output` the metadata of `input` with everything unreadable skipped (see
/// [`Source`] for what a skipped part becomes). Returns what was found and done.
pub fn repair(input: &dyn BlockIo, output: &dyn BlockIo) -> Result<Problems, RepairError> {
    let opts = DumpOptions {
        repair: true,
        ..DumpOptions::default()
    };
    let mut src = Source::open(input, &opts).map_err(RepairError::Read)?;
    let mut b = EraBuilder::new(output, src.header().nr_blocks, &src.writeset_nr_bits())
        .map_err(RepairError::Build)?;
    src.stream(&mut b).map_err(RepairError::Read)?;
    b.finish().map_err(RepairError::Build)?;
    Ok(src.into_problems())
}
