//! ZooKeeper's AdminServer commands: names, aliases and the JSON each one answers, with the
//! `command` and `error` fields every response carries.

use crate::client_port::{
    avg, dir_size, environment, mode, monitor_values, read_only, version, ServerInfo,
};
use crate::metrics::SummarySnapshot;
use ensemble_config::ServerRole;
use ensemble_messages::ServerState;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

/// A command: its primary name, its other names, and whether it needs a serving server.
pub struct Command {
    /// The name responses carry.
    pub name: &'static str,
    /// Other names it answers to (the four-letter word among them).
    pub aliases: &'static [&'static str],
    /// Whether it answers only while the server serves.
    pub needs_serving: bool,
}

const fn cmd(name: &'static str, aliases: &'static [&'static str], needs: bool) -> Command {
    Command {
        name,
        aliases,
        needs_serving: needs,
    }
}

/// The commands ensemble implements, sorted by name.
pub const COMMANDS: &[Command] = &[
    cmd("configuration", &["conf", "config"], true),
    cmd("connection_stat_reset", &["crst"], true),
    cmd("connections", &["cons"], true),
    cmd("dirs", &[], true),
    cmd("dump", &[], true),
    cmd("environment", &["env", "envi"], false),
    cmd("is_read_only", &["isro"], true),
    cmd("leader", &["lead"], true),
    cmd("monitor", &["mntr"], false),
    cmd("ruok", &[], true),
    cmd("server_stats", &["srvr"], true),
    cmd("stats", &["stat"], true),
    cmd("voting_view", &[], true),
    cmd("watch_summary", &["wchs"], true),
    cmd("watches", &["wchc"], true),
    cmd("watches_by_path", &["wchp"], true),
    cmd("zabstate", &[], false),
];

/// The command `name` names, by primary name or alias.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Runs command `name` against `info` (whose report must be present for the listings).
pub fn run(name: &str, info: &ServerInfo) -> Value {
    let Some(command) = find(name) else {
        return response(name, Map::new(), Some(format!("Unknown command: {name}")));
    };
    let serving = info.status.peer.serving || read_only(info);
    if command.needs_serving && !serving {
        return response(command.name, Map::new(), Some(NOT_SERVING.into()));
    }
    let (fields, error) = fields(command.name, info);
    response(command.name, fields, error)
}

fn response(command: &str, mut fields: Map<String, Value>, error: Option<String>) -> Value {
    fields.insert("command".into(), command.into());
    fields.insert("error".into(), error.map_or(Value::Null, Value::String));
    Value::Object(fields)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn fields(name: &str, info: &ServerInfo) -> (Map<String, Value>, Option<String>) {
    let fields = match name {
        "configuration" => configuration(info),
        "connections" => {
            json!({ "connections": connections(info, true), "secure_connections": [] })
        }
        "dirs" => json!({
            "datadir_size": dir_size(&info.config.storage.data_dir),
            "logdir_size": dir_size(&info.config.storage.data_log_dir),
        }),
        "dump" => dump(info),
        "environment" => Value::Object(
            environment(info)
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v)))
                .collect(),
        ),
        "is_read_only" => json!({ "read_only": read_only(info) }),
        "leader" if info.status.standalone => {
            return (Map::new(), Some("server is not initialized".into()))
        }
        "leader" => leader(info),
        "monitor" => monitor(info),
        "server_stats" => server_stats(info),
        "stats" => {
            let mut s = object(server_stats(info));
            s.insert("connections".into(), connections(info, false).into());
            s.insert("secure_connections".into(), json!([]));
            Value::Object(s)
        }
        "voting_view" => voting_view(info),
        "watch_summary" => json!({
            "num_connections": info.status.connections,
            "num_paths": info.status.watched_paths,
            "num_total_watches": info.status.watches,
        }),
        "watches" => watches(info, false),
        "watches_by_path" => watches(info, true),
        "zabstate" => zabstate(info),
        // ruok, connection_stat_reset: the response is the command and no error.
        _ => json!({}),
    };
    (object(fields), None)
}

fn configuration(info: &ServerInfo) -> Value {
    let c = info.config;
    let me = c.me();
    let mut conf = json!({
        "client_port": me.client.as_ref().map_or(0, |a| a.port),
        "data_dir": c.storage.data_dir.display().to_string(),
        "data_log_dir": c.storage.data_log_dir.display().to_string(),
        "tick_time": c.tick_ms,
        "max_client_cnxns": c.client.max_client_cnxns,
        "min_session_timeout": c.client.min_session_timeout_ms,
        "max_session_timeout": c.client.max_session_timeout_ms,
        "server_id": c.id,
        "client_port_listen_backlog": -1,
    });
    if !info.status.standalone {
        let extra = json!({
            "init_limit": c.init_limit,
            "sync_limit": c.sync_limit,
            "election_alg": 3,
            "election_port": me.election_port.unwrap_or(me.peer_port),
            "quorum_port": me.peer_port,
            "peer_type": 0,
        });
        if let (Value::Object(conf), Value::Object(extra)) = (&mut conf, extra) {
            conf.extend(extra);
        }
    }
    conf
}

fn connections(info: &ServerInfo, detailed: bool) -> Vec<Value> {
    let Some(report) = info.report else {
        return Vec::new();
    };
    report
        .clients
        .connections
        .iter()
        .map(|c| {
            let mut v = json!({
                "remote_socket_address": format!("{}:0", c.ip),
                "interest_ops": 1,
                "outstanding_requests": 0,
                "packets_received": c.received,
                "packets_sent": c.sent,
            });
            if detailed {
                if let Value::Object(m) = &mut v {
                    m.insert("session_id".into(), c.session.0.into());
                    m.insert("session_timeout".into(), c.timeout_ms.into());
                }
            }
            v
        })
        .collect()
}

/// Sessions grouped by timeout (expiry times live on the leader's tracker only), and the
/// ephemerals of each session.
fn dump(info: &ServerInfo) -> Value {
    let Some(report) = info.report else {
        return json!({});
    };
    let mut expiry: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (id, timeout) in &report.sessions {
        expiry.entry(timeout.to_string()).or_default().push(id.0);
    }
    let ephemerals: BTreeMap<String, &Vec<String>> = report
        .ephemerals
        .iter()
        .map(|(id, paths)| (id.0.to_string(), paths))
        .collect();
    json!({
        "expiry_time_to_session_ids": expiry,
        "session_id_to_ephemeral_paths": ephemerals,
    })
}

fn leader(info: &ServerInfo) -> Value {
    let p = &info.status.peer;
    let leader_ip = p
        .leader
        .and_then(|sid| info.config.servers.iter().find(|s| s.id == sid))
        .map_or_else(String::new, |s| s.host.clone());
    json!({
        "is_leader": p.state == ServerState::Leading,
        "leader_id": p.leader.map_or(-1, |sid| sid as i64),
        "leader_ip": leader_ip,
    })
}

/// `mntr`'s values, numbers as numbers, plus each summary as avg_, min_, max_, cnt_, sum_.
fn monitor(info: &ServerInfo) -> Value {
    let mut out = Map::new();
    for (k, v) in monitor_values(info) {
        let value = v
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| v.parse::<f64>().map(Value::from))
            .unwrap_or(Value::String(v));
        out.insert(k.to_string(), value);
    }
    let m = info.metrics;
    let summaries = [
        ("readlatency", m.read_latency.snapshot()),
        ("updatelatency", m.update_latency.snapshot()),
        ("fsynctime", m.fsync_time.snapshot()),
        ("snapshottime", m.snapshot_time.snapshot()),
        ("election_time", m.election_time.snapshot()),
    ];
    for (name, s) in summaries {
        out.extend(summary_fields(name, &s));
    }
    Value::Object(out)
}

fn summary_fields(name: &str, s: &SummarySnapshot) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(format!("avg_{name}"), json!(s.avg_ms()));
    m.insert(format!("min_{name}"), json!(s.min_ms));
    m.insert(format!("max_{name}"), json!(s.max_ms));
    m.insert(format!("cnt_{name}"), json!(s.count));
    m.insert(format!("sum_{name}"), json!(s.sum_ms));
    m
}

fn server_stats(info: &ServerInfo) -> Value {
    let m = info.metrics;
    let l = m.latency();
    let no_buffers =
        json!({ "last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1 });
    let dir = dir_size(&info.config.storage.data_dir);
    let log = dir_size(&info.config.storage.data_log_dir);
    let mut v = json!({
        "version": version(),
        "read_only": read_only(info),
        "server_stats": {
            "packets_sent": m.packets_sent.load(Relaxed),
            "packets_received": m.packets_received.load(Relaxed),
            "fsync_threshold_exceed_count": 0,
            "client_response_stats": no_buffers,
            "uptime": m.uptime_ms(),
            "data_dir_size": dir,
            "log_dir_size": log,
            "provider_null": false,
            "server_state": mode(info),
            "last_processed_zxid": info.status.peer.applied.0,
            "outstanding_requests": m.outstanding(),
            "avg_latency": avg(l.avg_ms).parse::<f64>().unwrap_or(0.0),
            "max_latency": l.max_ms as u64,
            "min_latency": l.min_ms as u64,
            "num_alive_client_connections": info.status.connections,
            "auth_failed_count": 0,
            "non_mtlsremote_conn_count": 0,
            "non_mtlslocal_conn_count": 0,
        },
        "client_response": no_buffers,
        "node_count": info.status.node_count,
    });
    if info.status.peer.state == ServerState::Leading && !info.status.standalone {
        if let Value::Object(m) = &mut v {
            m.insert("proposal_stats".into(), no_buffers);
        }
    }
    v
}

fn voting_view(info: &ServerInfo) -> Value {
    if info.status.standalone {
        return json!({ "current_config": {} });
    }
    let view: BTreeMap<String, Value> = info
        .config
        .servers
        .iter()
        // ZooKeeper's voting view lists the voters only.
        .filter(|s| s.role == ServerRole::Participant)
        .map(|s| {
            let election = format!("{}:{}", s.host, s.election_port.unwrap_or(s.peer_port));
            let view = json!({
                "server_addresses": [s.peer_addr()],
                "election_addresses": [election],
                "client_address": s.client_addr().unwrap_or_default(),
                "learner_type": "participant",
            });
            (s.id.to_string(), view)
        })
        .collect();
    json!({ "current_config": view })
}

fn watches(info: &ServerInfo, by_path: bool) -> Value {
    let mut map: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (session, path) in info.report.iter().flat_map(|r| &r.clients.watches) {
        if by_path {
            map.entry(path.clone()).or_default().push(session.0.into());
        } else {
            map.entry(session.0.to_string())
                .or_default()
                .push(path.clone().into());
        }
    }
    let key = if by_path {
        "path_to_session_ids"
    } else {
        "session_id_to_watched_paths"
    };
    json!({ key: map })
}

fn zabstate(info: &ServerInfo) -> Value {
    if info.status.standalone {
        return json!({ "voting": false, "zabstate": "" });
    }
    let (c, p) = (info.config, &info.status.peer);
    let me = c.me();
    let zxid = p.applied.0;
    let zabstate = match (p.state, p.serving) {
        (ServerState::Looking, _) => "election",
        (_, true) => "broadcast",
        (_, false) => "synchronization",
    };
    json!({
        "myid": c.id,
        "is_leader": p.state == ServerState::Leading,
        "quorum_address": me.peer_addr(),
        "election_address": format!("{}:{}", me.host, me.election_port.unwrap_or(me.peer_port)),
        "client_address": me.client_addr().unwrap_or_default(),
        "voting": !c.is_observer(),
        "last_zxid": format!("0x{zxid:x}"),
        "zab_epoch": zxid >> 32,
        "zab_counter": zxid & 0xffff_ffff,
        "zabstate": zabstate,
    })
}
