//! Our real peer code over a simulated network in virtual time (the DESIGN's third layer): swarms of any size on
//! one thread, measured against the bound on what any schedule could do.
//!
//! The runtime is tokio's single-threaded one with its clock paused: whenever every task waits, time jumps to the
//! next timer, so a 10-minute swarm runs as fast as its events can be handled. The peers are
//! [`peer::simulated::SimulatedPeer`]s (the swarm, picker, choker, super-seeder and connection code `peer`
//! runs), their streams [`net`]'s, their data made up and checked byte for byte.

pub mod net;
pub mod picture;
pub mod scenario;
pub mod swarm;
