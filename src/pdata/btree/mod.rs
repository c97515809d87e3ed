//! Single-level b-trees: the node format, an ordered checking walk and a bottom-up builder.

pub mod build;
pub mod node;
pub mod walk;
