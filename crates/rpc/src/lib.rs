//! Transmission's RPC (its `docs/rpc-spec.md`) over a [`peer::session::Session`], so that the tools people already
//! drive their client with (transmission-remote, Sonarr and Radarr, Flood, Transdroid, the `transmission-rpc`
//! library) drive ours, unchanged.
//!
//! Three layers, the outer two sans-IO: [`gate`] decides from a request's head whether it may be answered at all
//! (HTTP Basic auth, the Host header against DNS rebinding, the `X-Transmission-Session-Id` handshake against
//! cross-site requests, the body's size); [`protocol`] reads a body in either dialect (the legacy
//! `{"method", "arguments", "tag"}` and JSON-RPC 2.0 with snake_case names) and writes the answer in the same;
//! [`methods`] carries a call out on the session. [`server`] puts them on hyper.

// `session-get` answers in one `json!` of some fifty keys, past the default depth of its macro.
#![recursion_limit = "256"]

pub mod gate;
pub mod methods;
pub mod protocol;
pub mod server;
mod torrent_fields;

pub use methods::Rpc;
pub use server::{RpcConfig, serve};
