//! era_restore's command line.

use std::path::PathBuf;

use clap::Parser;

/// The arguments of era_restore.
#[derive(Parser)]
#[command(
    name = "era_restore",
    version,
    about = "Restore dm-era metadata from XML",
    long_about = "Restore dm-era metadata from the XML of era_dump (one <bit> per block, or \
compact <marked block_begin len> ranges; bits in any order). The input is read once, so it \
may be a pipe (-i -). The whole input is checked before anything is written; an error names \
its line and column. Meanwhile the era array waits in an unnamed temporary file in $TMPDIR \
(else /tmp): 4 bytes per origin block. The output must already exist and be at least 40960 \
bytes; block 0 is written last.",
    after_help = "Exit status: 0 success, 1 error, 2 usage error.

Examples:
  era_restore -i era.xml -o /dev/vg/era-meta
  zcat era.xml.gz | era_restore -i - -o /dev/vg/era-meta
  truncate -s 64M new-meta.img && era_restore -i era.xml -o new-meta.img"
)]
pub struct Args {
    /// XML input: a file, a pipe, or - for stdin
    #[arg(short, long, value_name = "FILE")]
    pub input: PathBuf,
    /// Metadata device or pre-allocated file to write
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Print nothing; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
    /// Write even over what is neither zeros nor dm-era metadata of the same geometry
    ///
    /// Without it the output is refused when it holds another target's metadata (another
    /// block size or nr_blocks), damaged dm-era metadata, a filesystem, LVM, LUKS, swap, a
    /// partition table, a disk log, or data that is neither zeros nor a signature we know.
    #[arg(long)]
    pub force: bool,
}

parse_with_bare_version!(Args);
