//! Node ids: the XOR metric, and BEP 42's ids derived from IP addresses, checked against the BEP's own vectors.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dht::{NodeId, bep42_node_id, bep42_valid, is_global};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// BEP 42's examples: IP address, the random number r, and a valid id.
const BEP42: [([u8; 4], u8, &str); 5] = [
    ([124, 31, 75, 21], 1, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
    ([21, 75, 31, 124], 86, "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
    ([65, 23, 51, 170], 22, "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
    ([84, 124, 73, 14], 65, "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
    ([43, 213, 53, 83], 90, "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
];

fn hex_id(hex: &str) -> NodeId {
    NodeId::from_slice(&hex::decode(hex).expect("hex")).expect("20 bytes")
}

#[test]
fn bep42_examples_are_valid_and_are_what_we_derive() {
    for (ip, r, hex) in BEP42 {
        let ip = IpAddr::from(ip);
        let id = hex_id(hex);
        assert!(bep42_valid(&id, ip), "{ip}");
        // Given the example's own random bytes, we derive the example exactly.
        assert_eq!(bep42_node_id(ip, r, id.0), id, "{ip}");
    }
}

#[test]
fn bep42_rejects_ids_that_do_not_match_the_address() {
    for (ip, _, hex) in BEP42 {
        let ip = IpAddr::from(ip);
        let id = hex_id(hex);
        // Any of the first 21 bits changed: invalid.
        for bit in 0..21 {
            let mut wrong = id;
            wrong.0[bit / 8] ^= 0x80 >> (bit % 8);
            assert!(!bep42_valid(&wrong, ip), "{ip} bit {bit}");
        }
        // Bits 21 to 151 are free.
        let mut free = id;
        free.0[2] ^= 0x07;
        free.0[10] ^= 0xff;
        assert!(bep42_valid(&free, ip));
        // The id valid for one example is not valid for another's address.
        assert!(!bep42_valid(&id, IpAddr::from([1, 2, 3, 4])));
    }
}

#[test]
fn bep42_exempts_local_addresses() {
    let id = NodeId([0xaa; 20]);
    for ip in [[127, 0, 0, 1], [10, 1, 2, 3], [192, 168, 1, 1], [172, 16, 0, 1], [169, 254, 1, 1]] {
        assert!(bep42_valid(&id, IpAddr::from(ip)), "{ip:?}");
    }
    assert!(bep42_valid(&id, IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert!(!bep42_valid(&id, IpAddr::from([8, 8, 8, 8])));
}

#[test]
fn bep42_ids_round_trip_for_both_families() {
    let mut rng = SmallRng::seed_from_u64(42);
    for _ in 0..1000 {
        let v4 = IpAddr::V4(Ipv4Addr::from(rng.random::<[u8; 4]>()));
        let v6 = IpAddr::V6(Ipv6Addr::from(rng.random::<[u8; 16]>()));
        for ip in [v4, v6] {
            let id = bep42_node_id(ip, rng.random(), rng.random());
            assert!(bep42_valid(&id, ip), "{ip}");
        }
    }
    // An IPv4-mapped IPv6 address is its IPv4 address.
    let (ip, r, hex) = BEP42[0];
    let mapped = IpAddr::V6(Ipv4Addr::from(ip).to_ipv6_mapped());
    assert_eq!(bep42_node_id(mapped, r, hex_id(hex).0), hex_id(hex));
}

#[test]
fn xor_distance_orders_by_shared_prefix() {
    let zero = NodeId([0; 20]);
    let mut near = NodeId([0; 20]);
    near.0[19] = 1;
    let mut far = NodeId([0; 20]);
    far.0[0] = 0x80;
    assert_eq!(zero.distance(&zero).leading_zeros(), 160);
    assert_eq!(zero.distance(&near).leading_zeros(), 159);
    assert_eq!(zero.distance(&far).leading_zeros(), 0);
    assert!(zero.distance(&near) < zero.distance(&far));
    assert_eq!(near.distance(&far), far.distance(&near));
    assert_eq!(format!("{near}"), "0000000000000000000000000000000000000001");
}

#[test]
fn global_addresses() {
    for ip in ["8.8.8.8", "1.1.1.1", "2a00:1450::1", "::ffff:8.8.8.8"] {
        assert!(is_global(ip.parse().expect("ip")), "{ip}");
    }
    let local = [
        "0.0.0.0",
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "100.64.0.1",
        "169.254.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "203.0.113.9",
        "224.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
    ];
    for ip in local {
        assert!(!is_global(ip.parse().expect("ip")), "{ip}");
    }
}
