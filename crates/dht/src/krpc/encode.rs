//! Encoding a [`Message`] as canonical bencode, through [`bencode::Value`] (which sorts keys as raw bytes).

use std::net::SocketAddr;

use bencode::Value;

use super::{ANNOUNCE_PEER, Body, ErrorMessage, FIND_NODE, GET_PEERS, Message, Method, PING, Query, Response, Want};

impl Message {
    /// Appends the message as canonical bencode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Compact strings are built first, so that the value tree can borrow them.
        let ip = self.external_addr.map(compact);
        let mut lists = CompactLists::default();
        if let Body::Response(response) = &self.body {
            lists.fill(response);
        }

        let mut top: Vec<(&[u8], Value<'_>)> = vec![(b"t", Value::Bytes(self.transaction_id.as_bytes()))];
        if let Some(version) = &self.version {
            top.push((b"v", Value::Bytes(version)));
        }
        if let Some(ip) = &ip {
            top.push((b"ip", Value::Bytes(ip)));
        }
        if self.read_only {
            top.push((b"ro", Value::Int(1)));
        }
        match &self.body {
            Body::Query(query) => {
                top.push((b"y", Value::Bytes(b"q")));
                top.push((b"q", Value::Bytes(method_name(&query.method))));
                top.push((b"a", query_args(query)));
            }
            Body::Response(response) => {
                top.push((b"y", Value::Bytes(b"r")));
                top.push((b"r", response_dict(response, &lists)));
            }
            Body::Error(error) => {
                top.push((b"y", Value::Bytes(b"e")));
                top.push((b"e", Value::List(vec![Value::Int(error.code), Value::Bytes(&error.message)])));
                if let Some(r) = error_dict(error) {
                    top.push((b"r", r));
                }
            }
        }
        Value::Dict(top).encode(out);
    }

    /// The message as a new buffer.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn method_name(method: &Method) -> &[u8] {
    match method {
        Method::Ping => PING,
        Method::FindNode { .. } => FIND_NODE,
        Method::GetPeers { .. } => GET_PEERS,
        Method::AnnouncePeer { .. } => ANNOUNCE_PEER,
        Method::Unknown { method } => method,
    }
}

fn query_args(query: &Query) -> Value<'_> {
    let mut args: Vec<(&[u8], Value<'_>)> = vec![(b"id", Value::Bytes(&query.id.0))];
    if let Some(want) = want_list(query.want) {
        args.push((b"want", want));
    }
    match &query.method {
        Method::Ping | Method::Unknown { .. } => {}
        Method::FindNode { target, bootstrap } => {
            args.push((b"target", Value::Bytes(&target.0)));
            push_flag(&mut args, b"bs", *bootstrap);
        }
        Method::GetPeers { info_hash, bootstrap } => {
            args.push((b"info_hash", Value::Bytes(info_hash)));
            push_flag(&mut args, b"bs", *bootstrap);
        }
        Method::AnnouncePeer { info_hash, port, implied_port, token, seed } => {
            args.push((b"info_hash", Value::Bytes(info_hash)));
            args.push((b"port", Value::Int(i64::from(*port))));
            args.push((b"token", Value::Bytes(token)));
            push_flag(&mut args, b"implied_port", *implied_port);
            if let Some(seed) = seed {
                args.push((b"seed", Value::Int(i64::from(*seed))));
            }
        }
    }
    Value::Dict(args)
}

fn want_list(want: Want) -> Option<Value<'static>> {
    let items: Vec<Value<'static>> = [(want.v4, b"n4"), (want.v6, b"n6")]
        .into_iter()
        .filter(|(wanted, _)| *wanted)
        .map(|(_, name)| Value::Bytes(name))
        .collect();
    (!items.is_empty()).then_some(Value::List(items))
}

fn push_flag<'a>(args: &mut Vec<(&'a [u8], Value<'a>)>, key: &'a [u8], set: bool) {
    if set {
        args.push((key, Value::Int(1)));
    }
}

/// The compact strings of a response, built before the value tree that borrows them.
#[derive(Default)]
struct CompactLists {
    nodes: Vec<u8>,
    nodes6: Vec<u8>,
    /// All values back to back; each is 6 or 18 bytes, so `ends` says where each one stops.
    values: Vec<u8>,
    ends: Vec<usize>,
}

impl CompactLists {
    fn fill(&mut self, response: &Response) {
        for node in response.nodes.iter().flatten() {
            self.nodes.extend_from_slice(&node.id.0);
            self.nodes.extend_from_slice(&compact(SocketAddr::V4(node.addr)));
        }
        for node in response.nodes6.iter().flatten() {
            self.nodes6.extend_from_slice(&node.id.0);
            self.nodes6.extend_from_slice(&compact(SocketAddr::V6(node.addr)));
        }
        for &peer in response.values.iter().flatten() {
            self.values.extend_from_slice(&compact(peer));
            self.ends.push(self.values.len());
        }
    }
}

fn response_dict<'a>(response: &'a Response, lists: &'a CompactLists) -> Value<'a> {
    let mut r: Vec<(&[u8], Value<'_>)> = vec![(b"id", Value::Bytes(&response.id.0))];
    if response.nodes.is_some() {
        r.push((b"nodes", Value::Bytes(&lists.nodes)));
    }
    if response.nodes6.is_some() {
        r.push((b"nodes6", Value::Bytes(&lists.nodes6)));
    }
    if response.values.is_some() {
        let starts = std::iter::once(0).chain(lists.ends.iter().copied());
        let values = starts.zip(&lists.ends).map(|(start, &end)| Value::Bytes(&lists.values[start..end]));
        r.push((b"values", Value::List(values.collect())));
    }
    if let Some(token) = &response.token {
        r.push((b"token", Value::Bytes(token)));
    }
    if let Some(port) = response.requester_port {
        r.push((b"p", Value::Int(i64::from(port))));
    }
    Value::Dict(r)
}

/// libtorrent's `r` beside `e`, when there is anything to put in it.
fn error_dict(error: &ErrorMessage) -> Option<Value<'_>> {
    let mut r: Vec<(&[u8], Value<'_>)> = Vec::new();
    if let Some(id) = &error.id {
        r.push((b"id", Value::Bytes(&id.0)));
    }
    if let Some(port) = error.requester_port {
        r.push((b"p", Value::Int(i64::from(port))));
    }
    (!r.is_empty()).then_some(Value::Dict(r))
}

/// A peer in compact form: 4 or 16 address bytes, then the port, big-endian.
pub(super) fn compact(addr: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(18);
    match addr {
        SocketAddr::V4(v4) => out.extend_from_slice(&v4.ip().octets()),
        SocketAddr::V6(v6) => out.extend_from_slice(&v6.ip().octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}
