//! The era array: one `le32` era per origin block, the era of the newest digested writeset
//! that marked it.

use crate::pdata::unpack::Unpack;

/// Bytes per era-array value: readers walk it as an array of `u32`.
pub const ERA_VALUE_SIZE: u32 = <u32 as Unpack>::DISK_SIZE;
