//! Generic persistent-data structures, as the kernel's `persistent-data` library writes them.
//! Nothing here names a format: formats hand in what is theirs (their block kinds).

pub mod array;
pub mod array_build;
pub mod bitset;
pub mod btree;
pub mod checksum;
pub mod crash_io;
pub mod error;
pub mod fault_io;
pub mod io;
pub mod layout;
pub mod refs;
pub mod report;
pub mod seeded;
pub mod space_map;
pub mod unpack;
pub mod walk;
pub mod write;
