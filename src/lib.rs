//! The programs' user-facing layer: command-line arguments, progress display, human and JSON output.
//! Each `src/bin/*.rs` main calls one `main` here; the protocol work lives in `crates/`.

pub mod cli;
pub mod demo;
pub mod generate;
pub mod mktorrent;
pub mod peer;
pub mod tracker;
