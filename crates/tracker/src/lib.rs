//! The UDP tracker (BEP 15): the swarm registry and connection IDs as plain data, and the server loop
//! around them.

pub mod connection_id;
pub mod http_front;
pub mod metrics;
pub mod server;
pub mod shards;
pub mod swarm;
