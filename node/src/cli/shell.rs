//! `ensemble shell`: a zkCli-style shell over the ZooKeeper protocol, interactive or one command.

use ensemble_actors::zk_client::{open_acl, ClientError, ZkClient};
use ensemble_messages::jute::{Acl, Id, Stat};
use ensemble_messages::zk::{err, event, perm};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// Prints a line; a closed stdout (`| head`) ends the output quietly instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub(super) fn run(servers: &str, command: Vec<String>) -> Result<i32, Box<dyn std::error::Error>> {
    let servers: Vec<String> = servers
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let client =
            ZkClient::connect_with_events(&servers, Duration::from_secs(30), events_tx).await?;
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                // Connection state changes (type None) are not node events: not printed.
                if e.event_type != event::NONE {
                    say!(
                        "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:{} path:{}",
                        event_name(e.event_type),
                        e.path
                    );
                }
            }
        });
        if !command.is_empty() {
            let ok = execute(&client, &command).await;
            return Ok(if ok { 0 } else { 1 });
        }
        let interactive = std::io::stdin().is_terminal();
        let mut n = 0;
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            if interactive {
                print!("[zk: {}(CONNECTED) {n}] ", servers.join(","));
                let _ = std::io::stdout().flush();
            }
            let Some(line) = lines.recv().await else {
                break;
            };
            n += 1;
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            match words.first().map(String::as_str) {
                None => continue,
                Some("quit") | Some("exit") => break,
                Some("close") => {
                    let _ = client.close().await;
                    break;
                }
                Some(_) => {
                    execute(&client, &words).await;
                }
            }
        }
        let _ = client.close().await;
        Ok(0)
    })
}

fn event_name(t: i32) -> &'static str {
    match t {
        event::NODE_CREATED => "NodeCreated",
        event::NODE_DELETED => "NodeDeleted",
        event::NODE_DATA_CHANGED => "NodeDataChanged",
        event::NODE_CHILDREN_CHANGED => "NodeChildrenChanged",
        _ => "None",
    }
}

/// zkCli's wording of an error on `path`.
fn describe(e: &ClientError, path: &str) -> String {
    match e {
        ClientError::Server(code) => match *code {
            err::NO_NODE => format!("Node does not exist: {path}"),
            err::NODE_EXISTS => format!("Node already exists: {path}"),
            err::BAD_VERSION => format!("version No is not valid : {path}"),
            err::NOT_EMPTY => format!("Node not empty: {path}"),
            err::NO_AUTH => format!("Insufficient permission : {path}"),
            err::NO_CHILDREN_FOR_EPHEMERALS => format!("Ephemerals cannot have children: {path}"),
            err::INVALID_ACL => format!("Acl is not valid : {path}"),
            err::NO_WATCHER => format!("No watcher found for the path: {path}"),
            err::BAD_ARGUMENTS => format!("Path {path} is not valid"),
            other => format!("KeeperErrorCode = {other} for {path}"),
        },
        other => other.to_string(),
    }
}

/// Java's `Date.toString()` in UTC: `Sun Nov 22 00:12:34 UTC 2026`.
fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

fn print_stat(s: &Stat) {
    say!("cZxid = 0x{:x}", s.czxid);
    say!("ctime = {}", java_date(s.ctime));
    say!("mZxid = 0x{:x}", s.mzxid);
    say!("mtime = {}", java_date(s.mtime));
    say!("pZxid = 0x{:x}", s.pzxid);
    say!("cversion = {}", s.cversion);
    say!("dataVersion = {}", s.version);
    say!("aclVersion = {}", s.aversion);
    say!("ephemeralOwner = 0x{:x}", s.ephemeral_owner);
    say!("dataLength = {}", s.data_length);
    say!("numChildren = {}", s.num_children);
}

fn perms_string(p: i32) -> String {
    [
        (perm::CREATE, 'c'),
        (perm::DELETE, 'd'),
        (perm::READ, 'r'),
        (perm::WRITE, 'w'),
        (perm::ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| p & bit != 0)
    .map(|(_, c)| c)
    .collect()
}

/// `scheme:id:perms`, e.g. `world:anyone:cdrwa` or `digest:alice:HASH=:r`.
fn parse_acl(text: &str) -> Option<Vec<Acl>> {
    text.split(',')
        .map(|entry| {
            let (rest, perms) = entry.rsplit_once(':')?;
            let (scheme, id) = rest.split_once(':')?;
            let mut bits = 0;
            for c in perms.chars() {
                bits |= match c {
                    'c' => perm::CREATE,
                    'd' => perm::DELETE,
                    'r' => perm::READ,
                    'w' => perm::WRITE,
                    'a' => perm::ADMIN,
                    _ => return None,
                };
            }
            Some(Acl {
                perms: bits,
                id: Id {
                    scheme: scheme.into(),
                    id: id.into(),
                },
            })
        })
        .collect()
}

/// Splits flags (`-s`, `-v 3`, ...) from positional arguments.
struct Args {
    flags: Vec<String>,
    values: std::collections::HashMap<String, String>,
    rest: Vec<String>,
}

fn parse_args(words: &[String], with_value: &[&str]) -> Args {
    let mut a = Args {
        flags: Vec::new(),
        values: Default::default(),
        rest: Vec::new(),
    };
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if w.starts_with('-') && w.len() > 1 && a.rest.is_empty() {
            if with_value.contains(&w.as_str()) && i + 1 < words.len() {
                a.values.insert(w.clone(), words[i + 1].clone());
                i += 1;
            } else {
                a.flags.push(w.clone());
            }
        } else {
            a.rest.push(w.clone());
        }
        i += 1;
    }
    a
}

/// Runs one command; prints its output or its error as zkCli does. Returns success.
async fn execute(client: &ZkClient, words: &[String]) -> bool {
    let cmd = words[0].as_str();
    let a = parse_args(&words[1..], &["-v", "-t", "-m"]);
    let has = |f: &str| a.flags.iter().any(|x| x == f);
    let version: i32 = a
        .values
        .get("-v")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    let Some(path) = a
        .rest
        .first()
        .cloned()
        .or_else(|| (cmd == "getEphemerals").then(|| "/".to_string()))
    else {
        say!("{cmd}: a path is required");
        return false;
    };
    let result: Result<(), ClientError> = async {
        match cmd {
            "create" => {
                let data = a.rest.get(1).cloned().unwrap_or_default();
                let acl = match a.rest.get(2) {
                    Some(text) => parse_acl(text).ok_or(ClientError::Server(err::INVALID_ACL))?,
                    None => open_acl(),
                };
                let flags = match (has("-e"), has("-s"), has("-c")) {
                    (_, _, true) => 4,
                    (true, true, _) => 3,
                    (true, false, _) => 1,
                    (false, true, _) => 2,
                    _ => 0,
                };
                let created = match a.values.get("-t") {
                    None => {
                        client
                            .create_with_acl(&path, data.as_bytes(), acl, flags)
                            .await?
                    }
                    Some(ttl) => {
                        let Ok(ttl) = ttl.parse::<i64>() else {
                            say!("-t argument must be a long value");
                            return Ok(());
                        };
                        if has("-e") {
                            say!("TTLs cannot be used with Ephemeral znodes");
                            return Ok(());
                        }
                        if has("-c") {
                            say!("TTLs cannot be used with Container znodes");
                            return Ok(());
                        }
                        let flags = if has("-s") { 6 } else { 5 };
                        client
                            .create_ttl(&path, data.as_bytes(), acl, flags, ttl)
                            .await?
                    }
                };
                say!("Created {created}");
            }
            "get" => {
                let (data, stat) = client.get_data_watch(&path, has("-w")).await?;
                say!("{}", String::from_utf8_lossy(&data));
                if has("-s") {
                    print_stat(&stat);
                }
            }
            "set" => {
                let data = a.rest.get(1).cloned().unwrap_or_default();
                let stat = client.set_data(&path, data.as_bytes(), version).await?;
                if has("-s") {
                    print_stat(&stat);
                }
            }
            "stat" => match client.exists_watch(&path, has("-w")).await? {
                Some(s) => print_stat(&s),
                None => return Err(ClientError::Server(err::NO_NODE)),
            },
            "ls" => {
                if has("-R") {
                    let mut stack = vec![path.clone()];
                    while let Some(p) = stack.pop() {
                        say!("{p}");
                        let (mut children, _) = client.get_children(&p, false).await?;
                        children.sort();
                        for c in children.into_iter().rev() {
                            stack.push(if p == "/" {
                                format!("/{c}")
                            } else {
                                format!("{p}/{c}")
                            });
                        }
                    }
                } else {
                    let (mut children, stat) = client.get_children(&path, has("-w")).await?;
                    children.sort();
                    say!("[{}]", children.join(", "));
                    if has("-s") {
                        print_stat(&stat);
                    }
                }
            }
            "delete" => client.delete(&path, version).await?,
            "deleteall" => {
                let mut order = vec![path.clone()];
                let mut i = 0;
                while i < order.len() {
                    let (children, _) = client.get_children(&order[i], false).await?;
                    let base = order[i].clone();
                    order.extend(children.into_iter().map(|c| {
                        if base == "/" {
                            format!("/{c}")
                        } else {
                            format!("{base}/{c}")
                        }
                    }));
                    i += 1;
                }
                for p in order.iter().rev() {
                    client.delete(p, -1).await?;
                }
            }
            "getAcl" => {
                let (acl, stat) = client.get_acl(&path).await?;
                if has("-s") {
                    print_stat(&stat);
                }
                for entry in acl {
                    say!(
                        "'{},'{}\n: {}",
                        entry.id.scheme,
                        entry.id.id,
                        perms_string(entry.perms)
                    );
                }
            }
            "setAcl" => {
                let text = a.rest.get(1).cloned().unwrap_or_default();
                let acl = parse_acl(&text).ok_or(ClientError::Server(err::INVALID_ACL))?;
                let stat = client.set_acl(&path, acl, version).await?;
                if has("-s") {
                    print_stat(&stat);
                }
            }
            "addauth" => {
                let auth = a.rest.get(1).cloned().unwrap_or_default();
                client.add_auth(&path, auth.as_bytes()).await?;
            }
            "sync" => {
                client.sync(&path).await?;
                say!("Sync is OK");
            }
            "getEphemerals" => {
                let mut list = client.get_ephemerals(&path).await?;
                list.sort();
                say!("[{}]", list.join(", "));
            }
            "addWatch" => {
                let mode = match a.values.get("-m").map(String::as_str) {
                    None | Some("PERSISTENT_RECURSIVE") => 1,
                    Some("PERSISTENT") => 0,
                    Some(_) => return Err(ClientError::Server(err::BAD_ARGUMENTS)),
                };
                client.add_watch(&path, mode).await?;
            }
            "removewatches" => {
                let t = if has("-c") {
                    1
                } else if has("-d") {
                    2
                } else {
                    3
                };
                client.remove_watches(&path, t).await?;
            }
            other => {
                say!("Unknown command: {other}");
                return Err(ClientError::Server(err::UNIMPLEMENTED));
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => true,
        Err(ClientError::Server(err::UNIMPLEMENTED))
            if !["create", "get", "set", "stat", "ls"].contains(&cmd) =>
        {
            false
        }
        Err(e) => {
            say!("{}", describe(&e, &path));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_acls_and_perms_as_zkcli_prints_them() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_310_069_439), "Sun Nov 22 01:14:29 UTC 2026");
        assert_eq!(perms_string(31), "cdrwa");
        let acl = parse_acl("world:anyone:r,digest:alice:x=:cdrwa").unwrap();
        assert_eq!(
            (acl[0].perms, acl[1].id.id.as_str()),
            (perm::READ, "alice:x=")
        );
        assert!(parse_acl("world:anyone:q").is_none());
    }
}
