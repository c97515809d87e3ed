//! The era array: one `le32` era per origin block, the era of the newest digested writeset
//! that marked it.

/// Bytes per era-array value.
pub const ERA_VALUE_SIZE: u32 = 4;
