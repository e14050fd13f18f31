//! Loopback ports for servers that are told their address before they start (devnet nodes,
//! their APIs, test servers).
//!
//! Such a port is picked now and bound later, by another process. Asking the kernel for port 0
//! picks from its ephemeral range, the same range every outgoing connection on the machine takes
//! its local port from, so under load another connection can take the port in between and the
//! server fails to bind. Ports here are drawn at random from below the ephemeral range, where
//! the kernel hands out nothing by itself; only another explicit pick can collide.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr, TcpListener},
};

/// The lowest port drawn.
pub const LOOPBACK_PORT_FIRST: u16 = 20_000;
/// How many random ports are tried before falling back to one the kernel picks.
pub const LOOPBACK_PORT_ATTEMPTS_MAX: usize = 64;
/// Where Linux publishes its ephemeral range (`first last`).
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// Linux's default first ephemeral port, when the range cannot be read.
const EPHEMERAL_FIRST_DEFAULT: u16 = 32_768;

/// A loopback address nothing listens on right now, below the kernel's ephemeral range when
/// there is room there, else one the kernel picks.
pub fn free_loopback_port() -> io::Result<SocketAddr> {
    let end = ephemeral_first();
    if end > LOOPBACK_PORT_FIRST {
        for _ in 0..LOOPBACK_PORT_ATTEMPTS_MAX {
            let port = rand::random_range(LOOPBACK_PORT_FIRST..end);
            if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                return listener.local_addr();
            }
        }
    }
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_first() -> u16 {
    std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(EPHEMERAL_FIRST_DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_loopback_and_below_the_ephemeral_range() {
        for _ in 0..16 {
            let address = free_loopback_port().unwrap();
            assert!(address.ip().is_loopback());
            if ephemeral_first() > LOOPBACK_PORT_FIRST {
                assert!((LOOPBACK_PORT_FIRST..ephemeral_first()).contains(&address.port()));
            }
            TcpListener::bind(address).unwrap();
        }
    }
}
