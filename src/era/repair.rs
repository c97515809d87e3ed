//! `era_repair`: a salvaging dump fed straight into the builder, with no XML in between.

use crate::pdata::error::{Side, Sided};

use super::build::{min_output_bytes, writeset_blocks, BuildError, EraBuilder};
use super::dump::{DumpError, DumpOptions, Stream};
use super::sink::Summary;
use crate::pdata::io::BlockIo;
use crate::pdata::report::Problems;

/// Why a repair failed.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The input's superblock is unusable, or writing through the builder failed (then the
    /// error is the output's: [`RepairError::side`]).
    #[error("{0}")]
    Read(#[source] DumpError),
    /// The output is too small, or finishing it failed.
    #[error("{0}")]
    Build(#[source] BuildError),
}

impl Sided for RepairError {
    fn side(&self) -> Side {
        match self {
            // A write that failed while the input streamed into the builder is the output's.
            RepairError::Read(DumpError::Io(_)) => Side::Output,
            RepairError::Read(_) => Side::Input,
            RepairError::Build(_) => Side::Output,
        }
    }
}

/// Writes to `output` the metadata of `input` with everything unreadable skipped (see
/// [`Stream`] for what a skipped part becomes). Returns what was found and done.
pub fn repair(input: &dyn BlockIo, output: &dyn BlockIo) -> Result<Problems, RepairError> {
    Repair::open(input)?.write(output)
}

/// A repair whose input was opened: what it will write is known before any output is.
pub struct Repair<'a> {
    src: Stream<'a>,
}

impl<'a> Repair<'a> {
    /// Reads the superblock and the writeset tree of `input`.
    pub fn open(input: &'a dyn BlockIo) -> Result<Repair<'a>, RepairError> {
        let opts = DumpOptions {
            repair: true,
            ..DumpOptions::default()
        };
        let src = Stream::open(input, &opts).map_err(RepairError::Read)?;
        Ok(Repair { src })
    }

    /// The superblock of the metadata to be written.
    pub fn header(&self) -> Summary {
        self.src.header()
    }

    /// The smallest output the repaired metadata fits (see [`min_output_bytes`]), or
    /// `None` when no output can hold it.
    pub fn output_bytes_needed(&self) -> Option<u64> {
        let nr_bits = self.src.writeset_nr_bits();
        let total = nr_bits.iter().map(|&n| writeset_blocks(n)).sum();
        min_output_bytes(self.header().nr_blocks, nr_bits.len() as u64, total)
    }

    /// Writes the repaired metadata to `output`. Returns what was found and done.
    pub fn write(mut self, output: &dyn BlockIo) -> Result<Problems, RepairError> {
        let mut b = EraBuilder::new(
            output,
            self.header().nr_blocks,
            &self.src.writeset_nr_bits(),
        )
        .map_err(RepairError::Build)?;
        self.src.stream(&mut b).map_err(RepairError::Read)?;
        b.finish().map_err(RepairError::Build)?;
        Ok(self.src.into_problems())
    }
}
