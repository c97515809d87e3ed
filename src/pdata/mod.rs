//! Generic persistent-data structures, as the kernel's `persistent-data` library writes them.
//! Nothing here knows about era or mirrors.

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
