//! The UDP tracker (BEP 15): the swarm registry, connection IDs and access lists as plain data, and the server
//! loop around them.

pub mod access;
pub mod access_file;
pub mod connection_id;
pub mod http_front;
pub mod metrics;
pub mod server;
pub mod shards;
pub mod swarm;
