//! The session's queries read a swarm's figures without its state's lock, and read them right.

use std::sync::mpsc;
use std::time::Duration;

use peer_wire::{Bitfield, Message};

use super::super::block_hashes::tests::v2_swarm;
use super::*;

#[test]
fn a_query_is_answered_while_message_handling_holds_the_state() {
    let v2 = v2_swarm(false);
    let swarm = v2.swarm.clone();
    let (held, hold) = (mpsc::channel(), mpsc::channel::<()>());
    let holder = std::thread::spawn({
        let swarm = swarm.clone();
        move || {
            let _state = swarm.lock();
            held.0.send(()).expect("the test waits");
            // Held until the test has its answers, or for at most 10 s.
            let _ = hold.1.recv_timeout(Duration::from_secs(10));
        }
    });
    held.1.recv().expect("the state is held");
    let (answer, answered) = mpsc::channel();
    let asker = std::thread::spawn({
        let swarm = swarm.clone();
        move || {
            let figures = (swarm.status(), swarm.have_count(), swarm.progress(), swarm.is_finished());
            let _ = answer.send((figures, swarm.have_bitfield(), swarm.connected_peers()));
        }
    });
    let ((status, have, progress, finished), pieces, peers) =
        answered.recv_timeout(Duration::from_secs(5)).expect("the queries waited for the state's lock");
    hold.0.send(()).expect("the holder waits");
    holder.join().expect("holder");
    asker.join().expect("asker");
    assert_eq!((status.have, status.total, status.peers), (0, 4, 0));
    assert_eq!(have, (0, 4));
    assert_eq!(progress, (0, 0, swarm.storage.total_length()));
    assert!(!finished);
    assert_eq!((pieces.count(), pieces.len(), peers.len()), (0, 4, 0));
}

#[test]
fn the_figures_follow_blocks_pieces_and_peers() {
    let v2 = v2_swarm(false);
    let seeder = v2.join(1);
    let other = v2.join(2);
    assert_eq!(v2.swarm.status().peers, 2);
    v2.send(&seeder, Bitfield::full(4).to_message());
    v2.send(&seeder, Message::Unchoke);
    let asked = v2.requests(&seeder);
    let piece = asked[0].0;
    let blocks: Vec<_> = asked.iter().copied().filter(|block| block.0 == piece).collect();
    let mut sent = 0u64;
    for &block in &blocks {
        let data = v2.block(block, false);
        sent += data.len() as u64;
        v2.send(&seeder, Message::Piece { index: block.0, begin: block.1, block: &data });
    }
    // Received, not yet checked: counted as downloaded, not as had.
    let status = v2.swarm.status();
    assert_eq!((status.downloaded, status.have), (sent, 0));
    v2.swarm.run_deferred();
    let status = v2.swarm.status();
    let piece_len = v2.swarm.storage.piece_size(piece);
    assert_eq!((status.have, status.left), (1, v2.swarm.storage.total_length() - u64::from(piece_len)));
    assert_eq!(v2.swarm.have_count(), (1, 4));
    let pieces = v2.swarm.have_bitfield();
    assert!(pieces.has(piece) && pieces.count() == 1, "the verified piece, and only it");
    let peers = v2.swarm.connected_peers();
    let from_seeder = peers.iter().find(|peer| peer.addr == seeder.addr).expect("the seeder is listed");
    assert_eq!(from_seeder.downloaded, sent, "what it sent, as of the verified piece");
    v2.swarm.remove(other.key, &CloseReason::Closed);
    assert_eq!(v2.swarm.status().peers, 1, "a peer gone is counted at once");
}
