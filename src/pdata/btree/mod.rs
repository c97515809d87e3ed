//! Single-level b-trees: the node format and an ordered, checking walk.

pub mod node;
pub mod walk;
