# Recipes for people with `just` (cargo install just); README and .ci/run never need it.

default:
    @just --list

# The demo: our tracker, a seeder and 3 leechers share sample-data/spiderman.txt on loopback; every copy is checked.
demo:
    cargo run --release --bin demo

# Redraws docs/demo.svg and docs/demo.png (the picture in README) from a fresh default demo run; needs chromium.
demo-picture:
    mkdir -p docs
    cargo run --release --bin demo -- --picture docs/demo.svg
    chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --window-size=1000,360 \
        --screenshot="$PWD/docs/demo.png" "file://$PWD/docs/demo.svg"

# The same swarm for any file or folder, with N leechers: just swarm 5 ~/Videos/film.mkv
swarm n file:
    cd "{{invocation_directory()}}" && cargo run --release --manifest-path "{{justfile_directory()}}/Cargo.toml" \
        --bin demo -- {{n}} "{{file}}"

# A swarm of our real peers in virtual time, against the lower bound; the last line is JSON:
# just sim flash-crowd 100 (scenarios: flash-crowd, loopback, churn, seeder-leaves, heterogeneous; `-- --help` for the options)
sim scenario leechers="40" *options="":
    cargo run --release -p sim -- {{scenario}} {{leechers}} {{options}}

# Build everything in release mode.
build:
    cargo build --release

# Regenerate torrents/spiderman.torrent (no creation date, so the bytes are reproducible).
sample-torrent:
    cargo run --release --bin mktorrent -- -q -f -d -o torrents/spiderman.torrent sample-data/spiderman.txt

# just generate target/share: what each program prints for --generate KIND, made from its clap definition.
# Man pages and shell completions of the four programs into DIR: NAME.1, NAME.bash, _NAME (zsh), NAME.fish.
generate dir:
    cd "{{invocation_directory()}}" && mkdir -p "{{dir}}" && for name in mktorrent tracker peer demo; do \
        for file in man:$name.1 complete-bash:$name.bash complete-zsh:_$name complete-fish:$name.fish; do \
            cargo run --quiet --manifest-path "{{justfile_directory()}}/Cargo.toml" --bin "$name" -- \
                --generate "${file%%:*}" > "{{dir}}/${file#*:}" || exit 1; \
        done; \
    done

# The whole test suite, as CI runs it (interop tests skip loudly when a reference tool is missing).
test:
    cargo test

# Formatting, lints, and no leftover debugging markers.
lint:
    cargo fmt --check
    cargo clippy --workspace --all-targets -- -D warnings
    ! grep -rnE 'dbg!|todo!|FIXME' --include '*.rs' src crates tests

# Run one fuzz target for SECONDS (targets: the files in fuzz/fuzz_targets: bencode_decode extension_decode http_tracker_parse
# krpc_decode lsd_message magnet_parse merkle_proof_verify metadata_fetch metainfo_parse metainfo_v2_parse resume_parse swarm_messages tracker_handle
# tracker_http udp_request_parse udp_response_parse wire_decode).
fuzz target seconds="60":
    cargo install --locked cargo-fuzz --quiet || true
    cd fuzz && cargo fuzz run -s none {{target}} -- -max_total_time={{seconds}}

# Torrent creation against Debian mktorrent and imdl: a 2 GiB file and 10,000 small files, 2 threads.
bench-create runs="5":
    ./bench/create.sh {{runs}}

# UDP tracker under aquatic_udp_load_test, against aquatic_udp and opentracker, for each worker count
# (trackers on CPUs 0..N-1, the load tester on the rest): just bench-tracker 3 10 "1 2"
bench-tracker runs="5" duration="20" workers="1":
    WORKERS="{{workers}}" ./bench/tracker.sh {{runs}} {{duration}}

# HTTP announces on keep-alive connections against our tracker (10,000 torrents x 20 peers): rate, failures, RSS over the run.
bench-tracker-http announces="1000000" connections="64":
    ./bench/tracker_http_load.sh {{announces}} {{connections}}

# COUNT torrents of 256 KiB seeded by one process: ours against transmission-daemon and qbittorrent-nox (installed
# by the script) on the same data: time to every torrent seeding with and without resume data, RSS, threads, fds,
# idle CPU. just bench-session 10000 60 "ours transmission"
bench-session count="1000" idle="60" tools="ours transmission qbittorrent":
    ./bench/session.sh {{count}} {{idle}} "{{tools}}"

# 1 GiB over loopback, one seeder to one leecher: our peer against libtorrent, rqbit and aria2.
bench-transfer runs="5" size_mib="1024":
    ./bench/transfer.sh {{runs}} {{size_mib}}

# One seeder capped at 20 MB/s and N leechers, 200 MiB: ours and libtorrent against the P2P lower bound F/u_s.
# just bench-swarm 3 4 40   (LEAVE=1: one of our leechers is killed half way)
bench-swarm runs="3" +leechers="4":
    ./bench/swarm.sh {{runs}} {{leechers}}

# A magnet link (metadata fetch), 64 MiB over loopback from one libtorrent seeder: time to metadata, first piece
# and completion, our peer against libtorrent in the same run.
bench-magnet runs="5" size_mib="64":
    ./bench/magnet.sh {{runs}} {{size_mib}}

# v2 and hybrid creation: our mktorrent --v2/--hybrid against libtorrent's create_torrent on a 2 GiB file and 10,000
# files, then this CPU's SHA-256 and SHA-1 rates and our SHA-1 paths (pairs, one stream, calibrated).
bench-create-v2 runs="5" size_mib="2048" files="10000":
    ./bench/create_v2.sh {{runs}} {{size_mib}} {{files}}

# Time to the first peer found through a loopback DHT (20 of our nodes, one libtorrent seeder announced in it) for a
# bare magnet link, our peer against libtorrent; then the memory of one of our nodes with a full routing table.
bench-dht runs="5":
    ./bench/dht.sh {{runs}}
