//! HTTP codec tests: golden queries and bodies, round-trip properties and robustness sweeps.

mod golden;
mod proptests;
mod robustness;
