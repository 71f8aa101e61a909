//! Codec tests: golden byte vectors, round-trip properties and robustness sweeps.

mod golden;
mod proptests;
mod robustness;
