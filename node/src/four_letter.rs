//! A blocking four-letter-word client, for `ensemble status` and tests.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Sends `word` to the server at `addr` and returns its whole reply.
pub fn ask(addr: &str, word: &str, timeout: Duration) -> std::io::Result<String> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let mut s = TcpStream::connect_timeout(&target, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The `Mode:` of a `srvr` reply, `not serving` without quorum, or why it is unreachable.
pub fn mode(addr: &str, timeout: Duration) -> String {
    match ask(addr, "srvr", timeout) {
        Ok(reply) => reply
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
            .unwrap_or_else(|| {
                if reply.contains("not currently serving") {
                    "not serving".into()
                } else {
                    format!("unexpected reply {reply:?}")
                }
            }),
        Err(e) => format!("unreachable ({e})"),
    }
}
