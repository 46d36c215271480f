//! The listening socket: how many connections the kernel queues before `accept`.

use std::process::Command;

use super::harness::{Service, Setup};

/// An enrollment storm opens one connection per cluster at once. The listener queues
/// 4,096 (or the host's `net.core.somaxconn`, if lower) rather than tokio's 1,024, whose
/// overflow cost each dropped connection a one-second SYN retransmission
/// (docs/BENCHMARKS.md, the storm).
#[test]
fn the_listener_queues_a_storm_of_connections() {
    let setup = Setup::new(None, "");
    let service = Service::start(&setup);
    let port = service
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap();
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2; tests/run-all.sh installs it)");
    let listening = String::from_utf8_lossy(&out.stdout);
    // State, Recv-Q, Send-Q (for a listener: its backlog), local address, peer address.
    let backlog: u32 = listening
        .split_whitespace()
        .nth(2)
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no listener on port {port} in `ss` output: {listening}"));
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(backlog, 4096.min(somaxconn), "{listening}");
}
