//! The nemesis: the proxied peer network and the faults it injects, one per cycle.

use super::proxy::{Flow, LinkFault, Proxy};
use ensemble_node::local_cluster::ProcessCluster;
use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use tokio::runtime::Handle;

/// A proxy on every peer link. Of a pair of servers only the higher id dials, so the link
/// between `i > j` is the proxy `(i, j)`: it listens on `proxy_host(i, j):2888` and forwards
/// to server `j`'s own peer address; its forward direction carries `i`'s bytes.
pub struct Net {
    block: u8,
    proxy_block: u8,
    proxies: BTreeMap<(u64, u64), Proxy>,
}

impl Net {
    /// Starts the proxies of `size` servers on `127.0.block.x`, the proxies on
    /// `127.0.proxy_block.x`.
    pub fn start(rt: &Handle, size: u64, block: u8, proxy_block: u8) -> std::io::Result<Net> {
        let mut net = Net {
            block,
            proxy_block,
            proxies: BTreeMap::new(),
        };
        for i in 1..=size {
            for j in 1..i {
                let listen = format!("{}:2888", net.proxy_host(i, j));
                let proxy = Proxy::start(rt, &listen, &format!("127.0.{block}.{j}:2888"))?;
                net.proxies.insert((i, j), proxy);
            }
        }
        Ok(net)
    }

    /// The host on which server `from` finds server `to`'s peer port: the proxy of their link
    /// when `from` is the one that dials (`from > to`), else `to`'s own host.
    pub fn dial_host(&self, from: u64, to: u64) -> String {
        if from > to {
            self.proxy_host(from, to)
        } else {
            format!("127.0.{}.{to}", self.block)
        }
    }

    fn proxy_host(&self, from: u64, to: u64) -> String {
        format!("127.0.{}.{}", self.proxy_block, from * 16 + to)
    }

    /// Every link back to healthy.
    pub fn heal(&self) {
        for p in self.proxies.values() {
            p.set(LinkFault::PASS);
        }
    }

    /// Sets every link between `side` and the other servers to `fault`.
    pub fn partition(&self, side: &[u64], fault: LinkFault) {
        for ((i, j), p) in &self.proxies {
            if side.contains(i) != side.contains(j) {
                p.set(fault);
            }
        }
    }

    /// Blackholes the bytes `server` sends (`outbound`) or receives on every link of it.
    pub fn one_way(&self, server: u64, outbound: bool) {
        for ((i, j), p) in &self.proxies {
            // The forward direction carries the dialer's (i's) bytes.
            let forward = match (server == *i, server == *j) {
                (true, _) => outbound,
                (_, true) => !outbound,
                _ => continue,
            };
            let mut fault = LinkFault::PASS;
            if forward {
                fault.forward = Flow::Blackhole;
            } else {
                fault.backward = Flow::Blackhole;
            }
            p.set(fault);
        }
    }

    /// Every link set to `fault`.
    pub fn all(&self, fault: LinkFault) {
        for p in self.proxies.values() {
            p.set(fault);
        }
    }
}

/// One fault, held for a while and then healed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of a server; restarted at the heal.
    Kill(u64),
    /// `kill -9` of every server at once; all restarted at the heal.
    KillAll,
    /// SIGSTOP of a server; SIGCONT at the heal.
    Pause(u64),
    /// The links between `side` and the rest cut (connections closed and refused) or
    /// blackholed (open but silent).
    Partition {
        /// One side of the partition.
        side: Vec<u64>,
        /// Blackhole instead of cut.
        blackhole: bool,
    },
    /// Every link of `server` silent in one direction only.
    OneWay {
        /// The server.
        server: u64,
        /// Its sent bytes (true) or received bytes (false) vanish.
        outbound: bool,
    },
    /// Every link delayed.
    Slow(Duration),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill(s) => write!(f, "kill -9 server {s}"),
            Fault::KillAll => write!(f, "kill -9 every server"),
            Fault::Pause(s) => write!(f, "SIGSTOP server {s}"),
            Fault::Partition { side, blackhole } => {
                let how = if *blackhole { "blackhole" } else { "cut" };
                write!(f, "{how} {side:?} from the rest")
            }
            Fault::OneWay { server, outbound } => {
                let what = if *outbound { "sends" } else { "receives" };
                write!(f, "blackhole what server {server} {what}")
            }
            Fault::Slow(d) => write!(f, "delay every link {d:?}"),
        }
    }
}

/// A random fault for servers `1..=size`, aimed at `leader` half of the time when one is known.
pub fn choose(rng: &mut SmallRng, size: u64, leader: Option<u64>) -> Fault {
    let ids: Vec<u64> = (1..=size).collect();
    let any = ids.choose(rng).copied().unwrap_or(1);
    let target = match leader {
        Some(l) if rng.random_bool(0.5) => l,
        _ => any,
    };
    match rng.random_range(0..20) {
        0..4 => Fault::Kill(target),
        4 => Fault::KillAll,
        5..8 => Fault::Pause(target),
        8..11 => Fault::Partition {
            side: vec![target],
            blackhole: rng.random_bool(0.5),
        },
        11..15 => {
            // A minority against the majority.
            let mut shuffled = ids.clone();
            shuffled.shuffle(rng);
            shuffled.truncate(ids.len().saturating_sub(1) / 2);
            Fault::Partition {
                side: shuffled,
                blackhole: rng.random_bool(0.5),
            }
        }
        15..18 => Fault::OneWay {
            server: target,
            outbound: rng.random_bool(0.5),
        },
        _ => Fault::Slow(Duration::from_millis(rng.random_range(20..300))),
    }
}

/// Injects `fault`.
pub fn apply(cluster: &mut ProcessCluster, net: &Net, fault: &Fault, size: u64) {
    match fault {
        Fault::Kill(s) => cluster.kill9(*s),
        Fault::KillAll => (1..=size).for_each(|s| cluster.kill9(s)),
        Fault::Pause(s) => {
            cluster.set_paused(*s, true);
        }
        Fault::Partition { side, blackhole } => {
            let how = if *blackhole {
                LinkFault::both(Flow::Blackhole)
            } else {
                LinkFault::CUT
            };
            net.partition(side, how);
        }
        Fault::OneWay { server, outbound } => net.one_way(*server, *outbound),
        Fault::Slow(d) => net.all(LinkFault::both(Flow::Delay(*d))),
    }
}

/// Undoes `fault`: restarts killed servers, resumes a paused one, heals every link.
pub fn heal(cluster: &mut ProcessCluster, net: &Net, fault: &Fault, size: u64) {
    match fault {
        Fault::Kill(s) => cluster.start(*s),
        Fault::KillAll => (1..=size).for_each(|s| cluster.start(s)),
        Fault::Pause(s) => {
            cluster.set_paused(*s, false);
        }
        Fault::Partition { .. } | Fault::OneWay { .. } | Fault::Slow(_) => {}
    }
    net.heal();
}
