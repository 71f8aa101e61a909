//! The BitTorrent peer: which blocks to request from whom ([`picker`]) and whom to upload to ([`choker`]).
//!
//! Both modules are pure state machines: the caller passes in time and randomness, so tests are deterministic.

pub mod choker;
pub mod picker;
