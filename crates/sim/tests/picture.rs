//! `sim --picture`: the SVG of a small run holds what it says (a step per leecher done, the bound, a second per
//! upload sample, a cell per pair that traded), and a real browser renders it to something other than a blank page.

use std::process::Command;

fn small_run() -> (sim::swarm::SwarmSetup, sim::swarm::SwarmOutcome) {
    let options = sim::scenario::Options {
        leechers: 4,
        size: 6 << 20,
        piece_length: 256 << 10,
        seed: 2,
        ..sim::scenario::Options::default()
    };
    let mut setup = sim::scenario::setup("liar", &options).expect("a scenario");
    setup.timeline = true;
    let outcome = sim::swarm::run(&setup).expect("the run");
    (setup, outcome)
}

#[test]
fn the_picture_shows_the_run_and_renders_in_a_browser() {
    let (setup, outcome) = small_run();
    let svg = sim::picture::svg("a small run", &setup, &outcome);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    // The done curve: a start and two points (a step) per honest leecher done.
    let points = svg.split("class=\"done\" points=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a curve");
    assert_eq!(points.split(' ').count(), 1 + 2 * 3, "three honest leechers, a step each: {points}");
    assert_eq!(svg.matches("class=\"bound\"").count(), 1);
    let sent = svg.split("class=\"leechers-sent\" points=\"").nth(1).and_then(|rest| rest.split('"').next());
    assert_eq!(sent.expect("an upload line").split(' ').count(), outcome.timeline.len());
    let traded = outcome.pairs.iter().flatten().filter(|&&bytes| bytes > 0).count();
    assert!(traded >= 4, "the leechers got bytes from someone: {:?}", outcome.pairs);
    assert_eq!(svg.matches("class=\"pair\"").count(), traded, "a cell per pair that traded");
    assert_eq!(svg.matches("class=\"liar\"").count(), 1, "the liar's column is marked");

    let have_chromium = Command::new("chromium").arg("--version").output().is_ok_and(|out| out.status.success());
    if !have_chromium {
        assert!(std::env::var_os("CI").is_none(), "CI=true but chromium is missing (apt-get install chromium)");
        eprintln!("SKIPPING the browser check: chromium is not installed (apt-get install chromium)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, png) = (dir.path().join("run.svg"), dir.path().join("run.png"));
    std::fs::write(&file, &svg).expect("write the picture");
    let rendered = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,800"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium runs");
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    // Distinct byte values in the decompressed pixels: a blank page has a handful.
    let colours = "import sys, zlib, struct\n\
                   data = open(sys.argv[1], 'rb').read()\n\
                   assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\n\
                   at, idat = 8, b''\n\
                   while at < len(data):\n    \
                   n = struct.unpack('>I', data[at:at+4])[0]\n    \
                   kind = data[at+4:at+8]\n    \
                   if kind == b'IDAT': idat += data[at+8:at+8+n]\n    \
                   at += 12 + n\n\
                   print(len(set(zlib.decompress(idat))))\n";
    let counted = Command::new("python3").args(["-c", colours]).arg(&png).output().expect("python3 runs");
    assert!(counted.status.success(), "{}", String::from_utf8_lossy(&counted.stderr));
    let distinct: usize = String::from_utf8_lossy(&counted.stdout).trim().parse().expect("a count");
    assert!(distinct > 16, "the rendered picture looks blank ({distinct} distinct byte values)");
}
