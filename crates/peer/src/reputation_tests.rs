use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;

fn sender(ip: [u8; 4], port: u16, id: u8) -> Sender {
    Sender { addr: SocketAddr::from((ip, port)), peer_id: [id; 20] }
}

fn digest(byte: u8) -> Digest {
    [byte; 20]
}

#[test]
fn a_piece_sent_by_one_peer_alone_that_fails_bans_that_peer_and_only_it() {
    let mut rep = Reputation::new();
    let liar = sender([10, 0, 0, 1], 6881, 1);
    let neighbour = sender([10, 0, 0, 1], 6882, 2);
    let verdict = rep.piece_failed(7, &[liar, liar, liar], &[digest(1); 3]);
    assert_eq!(verdict.banned, vec![liar]);
    assert!(verdict.banned_ips.is_empty(), "one endpoint is no evidence against the address");
    assert!(rep.is_banned(&liar));
    assert!(rep.is_banned_addr(liar.addr));
    // Another peer behind the same address is not touched.
    assert!(!rep.is_banned(&neighbour));
    assert!(!rep.is_banned_ip(liar.addr.ip()));
    // The liar reconnecting from another port with the same id is still refused.
    assert!(rep.is_banned(&Sender { addr: SocketAddr::from(([10, 0, 0, 1], 40000)), peer_id: liar.peer_id }));
}

#[test]
fn a_mixed_failure_paroles_everyone_and_a_good_copy_bans_exactly_the_liar() {
    let mut rep = Reputation::new();
    let honest = sender([127, 0, 0, 1], 6881, 1);
    let liar = sender([127, 0, 0, 1], 6882, 2);
    // Blocks 0 and 2 from the honest peer (good), 1 and 3 from the liar (bad).
    let senders = [honest, liar, honest, liar];
    let verdict = rep.piece_failed(3, &senders, &[digest(10), digest(99), digest(12), digest(98)]);
    assert!(verdict.banned.is_empty(), "no proof yet: {verdict:?}");
    assert_eq!(verdict.paroled.len(), 2);
    assert!(rep.on_parole(&honest) && rep.on_parole(&liar));
    assert!(rep.has_suspects(3));

    // The piece passes later, downloaded from the honest peer alone.
    let good = [digest(10), digest(11), digest(12), digest(13)];
    let verdict = rep.piece_passed(3, &[honest; 4], Some(&good));
    assert_eq!(verdict.banned, vec![liar]);
    assert_eq!(verdict.cleared, vec![honest]);
    assert!(rep.is_banned(&liar));
    assert!(!rep.is_banned(&honest) && !rep.on_parole(&honest));
    assert!(!rep.has_suspects(3), "the records are dropped once used");
}

#[test]
fn a_paroled_peer_that_sends_a_good_piece_alone_is_cleared() {
    let mut rep = Reputation::new();
    let (a, b) = (sender([10, 0, 0, 1], 1, 1), sender([10, 0, 0, 2], 2, 2));
    rep.piece_failed(0, &[a, b], &[digest(1), digest(2)]);
    assert!(rep.on_parole(&a));
    let verdict = rep.piece_passed(5, &[a, a], None);
    assert_eq!(verdict.cleared, vec![a]);
    assert!(!rep.on_parole(&a) && rep.on_parole(&b));
    // A piece from several senders clears nobody.
    let verdict = rep.piece_passed(6, &[b, a], None);
    assert!(verdict.cleared.is_empty());
}

#[test]
fn failures_without_proof_ban_nobody() {
    let mut rep = Reputation::new();
    let (a, b) = (sender([10, 0, 0, 1], 1, 1), sender([10, 0, 0, 2], 2, 2));
    for piece in 0..50 {
        let verdict = rep.piece_failed(piece, &[a, b], &[digest(1), digest(2)]);
        assert!(verdict.banned.is_empty(), "piece {piece}: {verdict:?}");
    }
    assert!(!rep.is_banned(&a) && !rep.is_banned(&b));
    assert!(rep.on_parole(&a) && rep.on_parole(&b));
}

#[test]
fn several_banned_endpoints_of_one_address_ban_the_address() {
    let mut rep = Reputation::new();
    let ip = [192, 0, 2, 7];
    let mut ip_bans = Vec::new();
    for port in 0..IP_BAN_ENDPOINTS {
        let liar = sender(ip, 5000 + port as u16, port as u8);
        ip_bans.extend(rep.piece_failed(port, &[liar], &[digest(0)]).banned_ips);
    }
    assert_eq!(ip_bans, vec![IpAddr::V4(Ipv4Addr::from(ip))]);
    assert!(rep.is_banned_addr(SocketAddr::from((ip, 1))), "any port of the address is refused now");
    assert!(!rep.is_banned_addr(SocketAddr::from(([192, 0, 2, 8], 1))));
}

#[test]
fn ban_lists_and_records_stay_bounded() {
    let mut rep = Reputation::new();
    for i in 0..(MAX_ENTRIES as u32 + 500) {
        let liar = Sender {
            addr: SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + i), 1)),
            peer_id: {
                let mut id = [0u8; 20];
                id[..4].copy_from_slice(&i.to_be_bytes());
                id
            },
        };
        rep.piece_failed(i, &[liar], &[digest(0)]);
    }
    let records = rep.records.as_ref().expect("a ban makes the records");
    assert!(records.banned_endpoints.len() <= MAX_ENTRIES);
    assert!(records.banned_ids.len() <= MAX_ENTRIES);
    for piece in 0..(MAX_SUSPECT_PIECES as u32 + 50) {
        let (a, b) = (sender([10, 1, 0, 1], 1, 1), sender([10, 1, 0, 2], 1, 2));
        rep.piece_failed(piece, &[a, b], &[digest(1), digest(2)]);
    }
    let records = rep.records.as_ref().expect("a ban makes the records");
    assert!(records.suspects.len() <= MAX_SUSPECT_PIECES);
    assert_eq!(records.suspects.len(), records.suspect_order.len());
}

#[test]
fn an_honest_swarm_makes_no_records() {
    let mut rep = Reputation::new();
    let (a, b) = (sender([10, 1, 0, 1], 1, 1), sender([10, 1, 0, 2], 1, 2));
    assert_eq!(rep.piece_passed(0, &[a, b], None), Verdict::default());
    assert_eq!(rep.blocks_proven(0, &[], &[a]), Verdict::default());
    assert!(!rep.is_banned(&a) && !rep.on_parole(&b) && !rep.has_suspects(0));
    assert!(rep.records.is_none(), "records were made with nothing to record");
    rep.piece_failed(1, &[a, b], &[digest(1), digest(2)]);
    assert!(rep.on_parole(&a) && rep.on_parole(&b) && rep.has_suspects(1));
}

#[test]
fn proven_block_hashes_ban_the_liar_at_once_and_clear_the_honest() {
    let mut rep = Reputation::new();
    let honest = sender([127, 0, 0, 1], 6881, 1);
    let liar = sender([127, 0, 0, 1], 6882, 2);
    let verdict = rep.piece_failed(4, &[honest, liar], &[digest(1), digest(2)]);
    assert_eq!(verdict.paroled.len(), 2);
    assert!(rep.has_suspects(4));
    // The block hashes came before any good copy: no need to wait for one.
    let verdict = rep.blocks_proven(4, &[liar], &[honest]);
    assert_eq!(verdict.banned, vec![liar]);
    assert_eq!(verdict.cleared, vec![honest]);
    assert!(rep.is_banned(&liar) && !rep.is_banned(&honest) && !rep.on_parole(&honest));
    assert!(!rep.has_suspects(4), "the kept blocks are settled");
    // A forged hash answer is proof too.
    let forger = sender([127, 0, 0, 2], 7000, 3);
    assert_eq!(rep.proven_liar(forger).banned, vec![forger]);
    assert!(rep.is_banned(&forger));
}
