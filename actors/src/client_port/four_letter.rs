//! Four-letter words, rendered in Apache ZooKeeper's exact layouts.

use crate::metrics::{process, ServerMetrics};
use crate::pipeline::ServerReport;
use crate::zab::NodeStatus;
use ensemble_config::{NodeConfig, ServerRole};
use ensemble_messages::zk::SessionId;
use ensemble_messages::ServerState;
use std::sync::atomic::Ordering::Relaxed;

/// The words ensemble answers.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "isro", "envi", "wchs", "srst", "dirs", "cons", "crst",
    "wchc", "wchp", "dump",
];

/// The words whose reply needs a [`ServerReport`].
pub const REPORT_WORDS: &[&str] = &["cons", "wchc", "wchp", "dump"];

const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// What a reply is rendered from.
pub struct ServerInfo<'a> {
    /// The node's config.
    pub config: &'a NodeConfig,
    /// The quorum peer's status.
    pub status: &'a NodeStatus,
    /// The server's running figures.
    pub metrics: &'a ServerMetrics,
    /// Connections, watches, sessions and ephemerals, for the words in [`REPORT_WORDS`].
    pub report: Option<&'a ServerReport>,
}

/// The version string every reply names.
pub fn version() -> String {
    format!(
        "3.8.0-ensemble-{}, built on ensemble",
        env!("CARGO_PKG_VERSION")
    )
}

/// `leader`, `follower`, `observer`, `standalone`, `read-only` or `looking`, as `srvr` says
/// it.
pub fn mode(info: &ServerInfo) -> &'static str {
    match info.status.peer.state {
        _ if read_only(info) => "read-only",
        _ if info.status.standalone => "standalone",
        ServerState::Leading => "leader",
        ServerState::Following => "follower",
        ServerState::Observing => "observer",
        ServerState::Looking => "looking",
    }
}

/// Whether this server serves read-only clients now: out of quorum with readonlymode enabled.
pub fn read_only(info: &ServerInfo) -> bool {
    info.config.client.read_only_mode && !info.status.peer.serving
}

/// What a four-letter word gets before anything is asked of the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Screened {
    /// Not a word ensemble knows: no reply.
    Unknown,
    /// A known word left out of `4lw.commands.whitelist`: this reply.
    Refused(String),
    /// A word to render from the server's status.
    Allowed,
}

/// Screens `word` against the known words and the whitelist. The listener does this before it
/// asks the server for anything, so a word nobody may run costs the server nothing (a `wchp`
/// otherwise had every watch listed and sorted on the server's thread first).
pub fn screen(word: &str, config: &NodeConfig) -> Screened {
    if !FOUR_LETTER_WORDS.contains(&word) {
        Screened::Unknown
    } else if !config.client.allows_word(word) {
        Screened::Refused(format!(
            "{word} is not executed because it is not in the whitelist.\n"
        ))
    } else {
        Screened::Allowed
    }
}

/// Renders the reply to `word`, or `None` for a word ensemble does not know.
pub fn render(word: &str, info: &ServerInfo) -> Option<String> {
    match screen(word, info.config) {
        Screened::Unknown => return None,
        Screened::Refused(reply) => return Some(reply),
        Screened::Allowed => {}
    }
    let serving = info.status.peer.serving || read_only(info);
    Some(match word {
        "ruok" => "imok".to_string(),
        "isro" => match (info.status.peer.serving, read_only(info)) {
            (true, _) => "rw",
            (false, true) => "ro",
            (false, false) => "null",
        }
        .to_string(),
        "conf" => conf(info),
        "envi" => envi(info),
        "dirs" => dirs(info),
        _ if !serving => NOT_SERVING.to_string(),
        "srvr" => srvr(info, false),
        "stat" => srvr(info, true),
        "mntr" => mntr(info),
        "wchs" => format!(
            "{} connections watching {} paths\nTotal watches:{}\n",
            info.status.connections, info.status.watched_paths, info.status.watches
        ),
        "srst" => "Server stats reset.\n".to_string(),
        "crst" => "Connection stats reset.\n".to_string(),
        "cons" | "wchc" | "wchp" | "dump" => match info.report {
            Some(r) => report_word(word, r),
            None => return None,
        },
        _ => return None,
    })
}

fn srvr(info: &ServerInfo, with_clients: bool) -> String {
    let p = &info.status.peer;
    let mut s = format!("Zookeeper version: {}\n", version());
    if with_clients {
        s.push_str("Clients:\n\n");
    }
    let l = info.metrics.latency();
    s.push_str(&format!(
        "Latency min/avg/max: {}/{}/{}\n",
        l.min_ms as u64,
        avg(l.avg_ms),
        l.max_ms as u64
    ));
    s.push_str(&format!(
        "Received: {}\nSent: {}\n",
        info.metrics.packets_received.load(Relaxed),
        info.metrics.packets_sent.load(Relaxed)
    ));
    s.push_str(&format!(
        "Connections: {}\nOutstanding: {}\n",
        info.status.connections,
        info.metrics.outstanding()
    ));
    s.push_str(&format!("Zxid: 0x{:x}\n", p.last_logged.0));
    s.push_str(&format!("Mode: {}\n", mode(info)));
    s.push_str(&format!("Node count: {}\n", info.status.node_count));
    if p.state == ServerState::Leading && !info.status.standalone {
        s.push_str("Proposal sizes last/min/max: -1/-1/-1\n");
    }
    s
}

/// A mean in ms as ZooKeeper prints it: at most 4 decimals, at least one.
pub fn avg(ms: f64) -> String {
    let rounded = (ms * 10_000.0).round() / 10_000.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.1}")
    } else {
        format!("{rounded}")
    }
}

/// `mntr`'s figures without the `zk_` prefix, as strings, in `mntr`'s order.
pub fn monitor_values(info: &ServerInfo) -> Vec<(&'static str, String)> {
    let p = &info.status.peer;
    let peer_state = match p.state {
        ServerState::Leading => "leading - broadcast",
        ServerState::Following => "following - broadcast",
        ServerState::Observing => "observing - broadcast",
        ServerState::Looking => "looking",
    };
    let m = info.metrics;
    let l = m.latency();
    let mut lines = vec![
        ("version", version()),
        ("server_state", mode(info).to_string()),
        ("peer_state", peer_state.to_string()),
        ("avg_latency", avg(l.avg_ms)),
        ("min_latency", (l.min_ms as u64).to_string()),
        ("max_latency", (l.max_ms as u64).to_string()),
        (
            "packets_received",
            m.packets_received.load(Relaxed).to_string(),
        ),
        ("packets_sent", m.packets_sent.load(Relaxed).to_string()),
        ("num_alive_connections", info.status.connections.to_string()),
        ("outstanding_requests", m.outstanding().to_string()),
        ("znode_count", info.status.node_count.to_string()),
        ("watch_count", info.status.watches.to_string()),
        ("ephemerals_count", info.status.ephemerals.to_string()),
        ("global_sessions", info.status.sessions.to_string()),
        ("uptime", m.uptime_ms().to_string()),
        ("quorum_size", p.voters.to_string()),
        ("last_zxid", format!("0x{:x}", p.last_logged.0)),
        ("committed_zxid", format!("0x{:x}", p.committed.0)),
        ("election_epoch", p.election_epoch.to_string()),
        ("current_epoch", p.current_epoch.to_string()),
        ("restarts", info.status.restarts.to_string()),
        ("looking_count", m.looking_count.load(Relaxed).to_string()),
        (
            "fsync_threshold_exceed_count",
            m.fsync_threshold_exceed_count.load(Relaxed).to_string(),
        ),
    ];
    if let (Some(open), Some(max)) = (process::open_fds(), process::max_fds()) {
        lines.push(("open_file_descriptor_count", open.to_string()));
        lines.push(("max_file_descriptor_count", max.to_string()));
    }
    if p.state == ServerState::Leading {
        lines.push(("learners", p.learners.to_string()));
        lines.push(("synced_followers", p.synced_followers.to_string()));
        lines.push(("synced_non_voting_followers", "0".into()));
        lines.push(("synced_observers", p.synced_observers.to_string()));
        lines.push(("followers", p.synced_followers.to_string()));
        lines.push(("pending_syncs", "0".into()));
        if let Some(up) = m.leader_uptime_ms() {
            lines.push(("leader_uptime", up.to_string()));
        }
    }
    lines
}

fn mntr(info: &ServerInfo) -> String {
    monitor_values(info)
        .iter()
        .map(|(k, v)| format!("zk_{k}\t{v}\n"))
        .collect()
}

fn report_word(word: &str, r: &ServerReport) -> String {
    let mut s = String::new();
    match word {
        "cons" => {
            for c in &r.clients.connections {
                s.push_str(&format!(
                    " /{}:0[1](queued=0,recved={},sent={},sid={},to={})\n",
                    c.ip, c.received, c.sent, c.session, c.timeout_ms
                ));
            }
            s.push('\n');
        }
        "wchc" => {
            let mut last = None;
            for (session, path) in &r.clients.watches {
                if last != Some(*session) {
                    s.push_str(&format!("{session}\n"));
                    last = Some(*session);
                }
                s.push_str(&format!("\t{path}\n"));
            }
        }
        "wchp" => {
            let mut by_path: Vec<(&String, SessionId)> =
                r.clients.watches.iter().map(|(id, p)| (p, *id)).collect();
            by_path.sort();
            let mut last = None;
            for (path, session) in by_path {
                if last != Some(path) {
                    s.push_str(&format!("{path}\n"));
                    last = Some(path);
                }
                s.push_str(&format!("\t{session}\n"));
            }
        }
        _ => {
            s.push_str(&format!(
                "SessionTracker dump:\nGlobal Sessions({}):\n",
                r.sessions.len()
            ));
            for (id, timeout) in &r.sessions {
                s.push_str(&format!("{id}\t{timeout}ms\n"));
            }
            s.push_str(&format!(
                "ephemeral nodes dump:\nSessions with Ephemerals ({}):\n",
                r.ephemerals.len()
            ));
            for (id, paths) in &r.ephemerals {
                s.push_str(&format!("{id}:\n"));
                for p in paths {
                    s.push_str(&format!("\t{p}\n"));
                }
            }
        }
    }
    s
}

/// `envi`'s `key=value` pairs.
pub fn environment(info: &ServerInfo) -> Vec<(&'static str, String)> {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    [
        ("zookeeper.version", version()),
        ("host.name", host),
        ("os.name", std::env::consts::OS.to_string()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        (
            "user.dir",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
        ("server.id", info.config.id.to_string()),
    ]
    .into()
}

fn envi(info: &ServerInfo) -> String {
    let mut s = "Environment:\n".to_string();
    for (k, v) in environment(info) {
        s.push_str(&format!("{k}={v}\n"));
    }
    s
}

/// Bytes of the files under `path`.
pub fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn dirs(info: &ServerInfo) -> String {
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        dir_size(&info.config.storage.data_dir),
        dir_size(&info.config.storage.data_log_dir)
    )
}

fn conf(info: &ServerInfo) -> String {
    let c = info.config;
    let me = c.me();
    let client_port = me.client.as_ref().map_or(0, |a| a.port);
    let mut s = format!("clientPort={client_port}\n");
    s.push_str(&format!("dataDir={}\n", c.storage.data_dir.display()));
    s.push_str(&format!(
        "dataLogDir={}\n",
        c.storage.data_log_dir.display()
    ));
    s.push_str(&format!(
        "tickTime={}\nmaxClientCnxns={}\nglobalOutstandingLimit={}\n",
        c.tick_ms, c.client.max_client_cnxns, c.client.global_outstanding_limit
    ));
    s.push_str(&format!(
        "minSessionTimeout={}\nmaxSessionTimeout={}\n",
        c.client.min_session_timeout_ms, c.client.max_session_timeout_ms
    ));
    s.push_str(&format!(
        "serverId={}\ninitLimit={}\nsyncLimit={}\n",
        c.id, c.init_limit, c.sync_limit
    ));
    // ZooKeeper prints its LearnerType's ordinal: 0 participant, 1 observer.
    s.push_str(&format!(
        "quorumPort={}\npeerType={}\nmembership: \n",
        me.peer_port,
        u8::from(c.is_observer())
    ));
    for srv in &c.servers {
        let election = srv.election_port.unwrap_or(srv.peer_port);
        // As in ZooKeeper's conf: no client address for a peer whose line names none, nor for
        // this server's own when it came from clientPort.
        let client = srv
            .listed_client()
            .and(srv.client_bind_addr())
            .map_or_else(String::new, |a| format!(";{a}"));
        let role = match srv.role {
            ServerRole::Participant => "participant",
            ServerRole::Observer => "observer",
        };
        s.push_str(&format!(
            "server.{}={}:{}:{}:{role}{client}\n",
            srv.id, srv.host, srv.peer_port, election
        ));
    }
    s.push_str("version=0");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::PeerStatus;
    use ensemble_messages::Zxid;

    fn status(state: ServerState, serving: bool) -> NodeStatus {
        NodeStatus {
            peer: PeerStatus {
                state,
                serving,
                leader: Some(3),
                current_epoch: 1,
                last_logged: Zxid::new(1, 0),
                committed: Zxid::new(1, 0),
                applied: Zxid::new(1, 0),
                synced_followers: 2,
                synced_observers: 0,
                learners: 2,
                voters: 3,
                election_epoch: 1,
            },
            node_count: 5,
            standalone: false,
            restarts: 0,
            connections: 1,
            watches: 3,
            watched_paths: 2,
            ephemerals: 0,
            sessions: 1,
        }
    }

    fn config(words: &[&str]) -> NodeConfig {
        let mut c = ensemble_config::load_toml_str(ensemble_config::DEFAULT_TOML, 3).unwrap();
        c.client.four_letter_words = words.iter().map(|w| w.to_string()).collect();
        c
    }

    /// Figures with 4 packets received and 3 sent.
    fn metrics() -> &'static ServerMetrics {
        static METRICS: std::sync::OnceLock<ServerMetrics> = std::sync::OnceLock::new();
        METRICS.get_or_init(|| {
            let m = ServerMetrics::default();
            (0..4).for_each(|_| m.received());
            (0..3).for_each(|_| m.sent());
            m
        })
    }

    fn info<'a>(config: &'a NodeConfig, status: &'a NodeStatus) -> ServerInfo<'a> {
        ServerInfo {
            config,
            status,
            metrics: metrics(),
            report: None,
        }
    }

    #[test]
    fn srvr_matches_zookeepers_layout() {
        let (c, s) = (config(&["*"]), status(ServerState::Leading, true));
        let out = render("srvr", &info(&c, &s)).unwrap();
        let expected = "Zookeeper version: 3.8.0-ensemble-0.1.0, built on ensemble\nLatency min/avg/max: 0/0.0/0\n\
            Received: 4\nSent: 3\nConnections: 1\nOutstanding: 0\nZxid: 0x100000000\nMode: leader\nNode count: 5\n\
            Proposal sizes last/min/max: -1/-1/-1\n";
        assert_eq!(out, expected);
        let f = status(ServerState::Following, true);
        assert!(render("stat", &info(&c, &f))
            .unwrap()
            .contains("Clients:\n\nLatency"));
        assert!(render("srvr", &info(&c, &f))
            .unwrap()
            .ends_with("Mode: follower\nNode count: 5\n"));
    }

    #[test]
    fn observers_say_so_and_the_leader_counts_them_apart() {
        let mut c = config(&["*"]);
        let mut observer = c.servers[2].clone();
        (observer.id, observer.peer_port) = (4, 2891);
        observer.role = ServerRole::Observer;
        observer.client = None;
        c.servers.push(observer);
        let mut s = status(ServerState::Leading, true);
        s.peer.synced_observers = 1;
        s.peer.learners = 3;
        let mntr = render("mntr", &info(&c, &s)).unwrap();
        for line in [
            "zk_quorum_size\t3\n",
            "zk_learners\t3\n",
            "zk_synced_followers\t2\n",
            "zk_synced_non_voting_followers\t0\n",
            "zk_synced_observers\t1\n",
        ] {
            assert!(mntr.contains(line), "{line:?} missing from {mntr}");
        }
        assert!(render("conf", &info(&c, &s))
            .unwrap()
            .contains("server.4=127.0.0.1:2891:2891:observer\n"));
        c.id = 4;
        let o = status(ServerState::Observing, true);
        let i = info(&c, &o);
        assert!(render("srvr", &i).unwrap().contains("Mode: observer\n"));
        let mntr = render("mntr", &i).unwrap();
        assert!(mntr.contains("zk_server_state\tobserver\n"), "{mntr}");
        assert!(
            mntr.contains("zk_peer_state\tobserving - broadcast\n"),
            "{mntr}"
        );
        assert!(render("conf", &i).unwrap().contains("peerType=1\n"));
    }

    #[test]
    fn conf_leaves_out_a_client_port_address_from_the_membership() {
        let mut c = config(&["*"]);
        let own = c.id;
        let me = c.servers.iter_mut().find(|s| s.id == own).unwrap();
        me.client_source = ensemble_config::ClientSource::ClientPort;
        let line = format!(
            "server.{own}={}:{}:{}:participant\n",
            me.host, me.peer_port, me.peer_port
        );
        let port = me.client.as_ref().unwrap().port;
        let conf = render("conf", &info(&c, &status(ServerState::Leading, true))).unwrap();
        assert!(conf.starts_with(&format!("clientPort={port}\n")), "{conf}");
        assert!(conf.contains(&line), "{conf}");
    }

    #[test]
    fn out_of_quorum_in_read_only_mode_the_server_says_so() {
        let mut c = config(&["*"]);
        c.client.read_only_mode = true;
        let s = status(ServerState::Looking, false);
        let i = info(&c, &s);
        assert_eq!(render("isro", &i).unwrap(), "ro");
        assert!(render("srvr", &i).unwrap().contains("Mode: read-only\n"));
        assert!(render("mntr", &i)
            .unwrap()
            .contains("zk_server_state\tread-only\n"));
        let back = status(ServerState::Following, true);
        assert_eq!(render("isro", &info(&c, &back)).unwrap(), "rw");
    }

    #[test]
    fn without_quorum_and_outside_the_whitelist() {
        let c = config(&["srvr", "ruok", "isro"]);
        let s = status(ServerState::Looking, false);
        let i = info(&c, &s);
        assert_eq!(render("srvr", &i).unwrap(), NOT_SERVING);
        assert_eq!(render("ruok", &i).unwrap(), "imok");
        assert_eq!(render("isro", &i).unwrap(), "null");
        assert_eq!(
            render("mntr", &i).unwrap(),
            "mntr is not executed because it is not in the whitelist.\n"
        );
        assert_eq!(render("xxxx", &i), None);
        let all = config(&["*"]);
        let serving = status(ServerState::Following, true);
        let i = info(&all, &serving);
        assert_eq!(
            render("wchs", &i).unwrap(),
            "1 connections watching 2 paths\nTotal watches:3\n"
        );
        assert!(render("envi", &i)
            .unwrap()
            .starts_with("Environment:\nzookeeper.version=3.8.0-ensemble-"));
    }

    #[test]
    fn connection_watch_and_session_listings() {
        use crate::client_port::{ClientReport, ConnectionInfo};
        let c = config(&["*"]);
        let s = status(ServerState::Following, true);
        let report = ServerReport {
            clients: ClientReport {
                connections: vec![ConnectionInfo {
                    ip: "127.0.0.1".into(),
                    session: SessionId(0x10),
                    timeout_ms: 4000,
                    received: 3,
                    sent: 2,
                }],
                watches: vec![
                    (SessionId(0x10), "/a".into()),
                    (SessionId(0x10), "/b".into()),
                    (SessionId(0x11), "/a".into()),
                ],
            },
            sessions: vec![(SessionId(0x10), 4000)],
            ephemerals: vec![(SessionId(0x10), vec!["/e".into()])],
        };
        let mut i = info(&c, &s);
        assert_eq!(render("cons", &i), None, "no report fetched");
        i.report = Some(&report);
        assert_eq!(
            render("cons", &i).unwrap(),
            " /127.0.0.1:0[1](queued=0,recved=3,sent=2,sid=0x10,to=4000)\n\n"
        );
        assert_eq!(
            render("wchc", &i).unwrap(),
            "0x10\n\t/a\n\t/b\n0x11\n\t/a\n"
        );
        assert_eq!(
            render("wchp", &i).unwrap(),
            "/a\n\t0x10\n\t0x11\n/b\n\t0x10\n"
        );
        assert!(render("dump", &i)
            .unwrap()
            .contains("Sessions with Ephemerals (1):\n0x10:\n\t/e\n"));
        assert_eq!(render("crst", &i).unwrap(), "Connection stats reset.\n");
    }

    #[test]
    fn words_are_screened_before_the_server_is_asked() {
        let c = config(&["srvr"]);
        assert_eq!(screen("srvr", &c), Screened::Allowed);
        assert_eq!(screen("abcd", &c), Screened::Unknown);
        for word in REPORT_WORDS.iter().chain(&["crst", "wchs", "mntr"]) {
            assert_eq!(
                screen(word, &c),
                Screened::Refused(format!(
                    "{word} is not executed because it is not in the whitelist.\n"
                )),
                "{word}"
            );
        }
        assert_eq!(screen("wchp", &config(&["*"])), Screened::Allowed);
    }
}
