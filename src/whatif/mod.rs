//! Loops of studies over scenarios. Today: global sensitivity analysis
//! (`sensitivity`); `sweep.rs` and `compare.rs` are to move here.

pub mod sensitivity;
