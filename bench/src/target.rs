//! A system under test: its client addresses and its server processes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Clock ticks per second of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// One ensemble of servers, as given on the command line: `NAME=HOST:PORT,..@PID,..`.
#[derive(Clone, Debug)]
pub struct Target {
    /// Name in the tables.
    pub name: String,
    /// Client addresses, one per server.
    pub servers: Vec<String>,
    /// Server process ids, in the order of `servers`.
    pub pids: Vec<u32>,
}

impl Target {
    /// Parses `NAME=HOST:PORT,HOST:PORT@PID,PID`.
    pub fn parse(spec: &str) -> Result<Target, String> {
        let (name, rest) = spec.split_once('=').ok_or("expected NAME=SERVERS@PIDS")?;
        let (servers, pids) = rest.split_once('@').ok_or("expected SERVERS@PIDS")?;
        let servers: Vec<String> = servers.split(',').map(str::to_owned).collect();
        let pids = pids
            .split(',')
            .map(|p| p.parse::<u32>().map_err(|e| format!("pid {p}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if servers.len() != pids.len() {
            return Err(format!(
                "{name}: {} servers but {} pids",
                servers.len(),
                pids.len()
            ));
        }
        Ok(Target {
            name: name.to_owned(),
            servers,
            pids,
        })
    }

    /// The connect string of every server, for clients that may fail over.
    pub fn connect_string(&self) -> String {
        self.servers.join(",")
    }

    /// Server `i` (round-robin), for clients spread evenly over the servers.
    pub fn server(&self, i: usize) -> &str {
        &self.servers[i % self.servers.len()]
    }

    /// CPU seconds (user + system) used so far by all server processes that are still alive.
    pub fn cpu_seconds(&self) -> f64 {
        self.pids.iter().filter_map(|&p| cpu_seconds(p)).sum()
    }

    /// Index of the server whose `srvr` reply says `Mode: leader`.
    pub fn leader(&self) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| srvr(s).is_some_and(|r| r.contains("Mode: leader")))
    }
}

/// utime + stime of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces, start at field 3 (state).
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// The `srvr` four-letter word's reply from `addr`.
fn srvr(addr: &str) -> Option<String> {
    let sock = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"srvr").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Sends SIGKILL to `pid`.
pub fn kill9(pid: u32) -> Result<(), String> {
    let status = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -9 {pid} failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_servers_and_pids() {
        let t = Target::parse("zk=127.0.0.1:1,127.0.0.1:2@10,20").unwrap();
        assert_eq!(t.name, "zk");
        assert_eq!(t.servers, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(t.pids, [10, 20]);
        assert_eq!(t.server(3), "127.0.0.1:2");
        assert!(Target::parse("zk=127.0.0.1:1@10,20").is_err());
        assert!(Target::parse("zk=127.0.0.1:1@x").is_err());
    }
}
