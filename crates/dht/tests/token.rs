//! Announce tokens: bound to the requester's IP address, accepted for 5 to 10 minutes.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use dht::TokenSecret;
use dht::token::{ROTATE_EVERY, TOKEN_LEN};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const ALICE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
const BOB: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));

#[test]
fn a_token_is_accepted_from_its_address_only() {
    let t0 = Instant::now();
    let secret = TokenSecret::new([7; 20], t0);
    let token = secret.issue(ALICE, t0);
    assert_eq!(token.len(), TOKEN_LEN);
    assert!(secret.verify(ALICE, &token, t0));
    assert!(!secret.verify(BOB, &token, t0));
    assert_ne!(secret.issue(BOB, t0), token);
}

#[test]
fn tokens_outlive_one_rotation_but_not_two() {
    let t0 = Instant::now();
    let secret = TokenSecret::new([7; 20], t0);
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    // Issued at the start of an epoch: good for two epochs, 10 minutes.
    let early = secret.issue(ALICE, t0);
    assert!(secret.verify(ALICE, &early, at(599)));
    assert!(!secret.verify(ALICE, &early, at(600)));
    // Issued at the end of one: still 5 minutes.
    let late = secret.issue(ALICE, at(299));
    assert_ne!(late, secret.issue(ALICE, at(300)), "the secret rotates every {ROTATE_EVERY:?}");
    assert!(secret.verify(ALICE, &late, at(599)));
    assert!(!secret.verify(ALICE, &late, at(600)));
    // A token from the future (a clock going backwards) is no good either.
    assert!(!secret.verify(ALICE, &secret.issue(ALICE, at(900)), at(0)));
}

#[test]
fn malformed_and_foreign_tokens_are_refused() {
    let t0 = Instant::now();
    let secret = TokenSecret::new([7; 20], t0);
    let token = secret.issue(ALICE, t0);
    assert!(!secret.verify(ALICE, &token[..TOKEN_LEN - 1], t0));
    assert!(!secret.verify(ALICE, &[token.as_slice(), &[0]].concat(), t0));
    assert!(!secret.verify(ALICE, b"", t0));
    let other = TokenSecret::random(&mut SmallRng::seed_from_u64(1), t0);
    assert!(!other.verify(ALICE, &token, t0));
    assert!(!format!("{secret:?}").contains("7, 7"), "the key stays out of Debug");
}

#[test]
fn ipv4_mapped_addresses_are_the_same_host() {
    let t0 = Instant::now();
    let secret = TokenSecret::new([9; 20], t0);
    let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 1).to_ipv6_mapped());
    assert!(secret.verify(mapped, &secret.issue(ALICE, t0), t0));
}
