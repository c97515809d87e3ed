//! The dm-log disk dirty log (the region log of the `mirror` target).
