//! A small BEP 15 client for tests, built on our tracker-protocol codec.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use tracker_protocol::{
    AnnounceEvent, AnnounceOptions, AnnounceRequest, ConnectRequest, ConnectionId, InfoHashes, Response, ScrapeRequest,
    TorrentStats, TransactionId,
};

/// What an announce returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnounceReply {
    Peers { interval: u32, seeders: u32, leechers: u32, peers: Vec<SocketAddrV4> },
    Error(String),
}

impl AnnounceReply {
    pub fn peers(&self) -> Vec<SocketAddrV4> {
        match self {
            AnnounceReply::Peers { peers, .. } => peers.clone(),
            AnnounceReply::Error(message) => panic!("tracker answered with an error: {message}"),
        }
    }
}

/// One client socket on 127.0.0.1 talking to one tracker.
pub struct UdpClient {
    pub socket: UdpSocket,
    tracker: SocketAddr,
    next_transaction: u32,
}

impl UdpClient {
    pub fn new(tracker: SocketAddr) -> UdpClient {
        UdpClient::on(tracker, "127.0.0.1")
    }

    /// A client on another loopback address (127.0.0.0/8 all reach this machine).
    pub fn on(tracker: SocketAddr, ip: &str) -> UdpClient {
        let socket = UdpSocket::bind((ip, 0)).expect("bind client socket");
        socket.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        UdpClient { socket, tracker, next_transaction: 1 }
    }

    /// Sends raw bytes and returns the reply, if one comes within the socket's timeout.
    pub fn exchange(&self, packet: &[u8]) -> Option<Vec<u8>> {
        self.socket.send_to(packet, self.tracker).expect("send");
        let mut buffer = [0u8; 4096];
        match self.socket.recv_from(&mut buffer) {
            Ok((len, _)) => Some(buffer[..len].to_vec()),
            Err(_) => None,
        }
    }

    /// Sends `packet`, retrying a few times (UDP may drop), and returns the parsed reply.
    fn request(&self, packet: &[u8]) -> Response<'static, SocketAddrV4> {
        for _ in 0..5 {
            if let Some(reply) = self.exchange(packet) {
                return Response::<SocketAddrV4>::parse(&reply).expect("a valid BEP 15 reply").into_owned();
            }
        }
        panic!("no reply from the tracker at {}", self.tracker);
    }

    fn transaction(&mut self) -> TransactionId {
        self.next_transaction += 1;
        TransactionId(self.next_transaction)
    }

    pub fn connect(&mut self) -> ConnectionId {
        let mut packet = Vec::new();
        let transaction_id = self.transaction();
        ConnectRequest { transaction_id }.write(&mut packet);
        match self.request(&packet) {
            Response::Connect(reply) if reply.transaction_id == transaction_id => reply.connection_id,
            other => panic!("expected a connect reply, got {other:?}"),
        }
    }

    pub fn announce_packet(
        &mut self,
        connection_id: ConnectionId,
        info_hash: [u8; 20],
        port: u16,
        left: u64,
        event: AnnounceEvent,
        num_want: i32,
    ) -> Vec<u8> {
        let mut packet = Vec::new();
        AnnounceRequest {
            connection_id,
            transaction_id: self.transaction(),
            info_hash,
            peer_id: [port as u8; 20],
            downloaded: 0,
            left,
            uploaded: 0,
            event,
            ip_address: None,
            key: u32::from(port),
            num_want,
            port,
            options: AnnounceOptions::EMPTY,
        }
        .write(&mut packet);
        packet
    }

    /// Connects and announces as a peer listening on `port`.
    pub fn announce(
        &mut self,
        info_hash: [u8; 20],
        port: u16,
        left: u64,
        event: AnnounceEvent,
        num_want: i32,
    ) -> AnnounceReply {
        let connection_id = self.connect();
        let packet = self.announce_packet(connection_id, info_hash, port, left, event, num_want);
        match self.request(&packet) {
            Response::Announce(reply) => AnnounceReply::Peers {
                interval: reply.interval,
                seeders: reply.seeders,
                leechers: reply.leechers,
                peers: reply.peers,
            },
            Response::Error(error) => AnnounceReply::Error(error.message.into_owned()),
            other => panic!("expected an announce reply, got {other:?}"),
        }
    }

    pub fn scrape(&mut self, hashes: &[[u8; 20]]) -> Vec<TorrentStats> {
        let connection_id = self.connect();
        let mut packet = Vec::new();
        ScrapeRequest { connection_id, transaction_id: self.transaction(), info_hashes: InfoHashes::new(hashes) }
            .write(&mut packet);
        match self.request(&packet) {
            Response::Scrape(reply) => reply.torrents,
            other => panic!("expected a scrape reply, got {other:?}"),
        }
    }
}
