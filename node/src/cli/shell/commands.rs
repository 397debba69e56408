//! The commands that talk to the ensemble, each printing as zkCli does.

use super::args::{parse_acl, Args};
use super::output::{describe, perms_string, print_stat};
use super::quota;
use ensemble_actors::zk_client::{open_acl, ClientError, ZkClient};
use ensemble_messages::zk::{AddWatchMode, CreateMode, WatcherType, ZkError};
use std::io::Write;

/// Why a command failed.
pub(super) enum Failure {
    /// Wrong arguments: the command's usage is printed.
    Usage,
    /// A message printed as it is.
    Message(String),
    /// A server or connection error on a path, printed in zkCli's wording.
    Client(ClientError, String),
}

impl Failure {
    /// The text printed for this failure (`None` for a usage error, printed by the caller).
    pub fn text(&self) -> Option<String> {
        match self {
            Failure::Usage => None,
            Failure::Message(m) => Some(m.clone()),
            Failure::Client(e, path) => Some(describe(e, path)),
        }
    }
}

type Done = Result<(), Failure>;

/// Maps a client error on `path` into a [`Failure`].
pub(super) fn at(path: &str) -> impl Fn(ClientError) -> Failure + '_ {
    move |e| Failure::Client(e, path.to_string())
}

/// `-v version`, -1 (any) when absent.
fn version(a: &Args) -> Result<i32, Failure> {
    a.value("-v")
        .map_or(Ok(-1), |v| v.parse().map_err(|_| Failure::Usage))
}

/// Runs the server command `name` with its parsed arguments.
pub(super) async fn execute(c: &ZkClient, name: &str, a: &Args) -> Done {
    match name {
        "create" => create(c, a).await,
        "get" => get(c, a).await,
        "set" => set(c, a).await,
        "stat" => stat(c, a).await,
        "ls" => ls(c, a).await,
        "delete" => {
            let path = a.arg(0);
            c.delete(path, version(a)?).await.map_err(at(path))
        }
        "deleteall" => deleteall(c, a.arg(0)).await,
        "getAcl" => get_acl(c, a).await,
        "setAcl" => set_acl(c, a).await,
        "addauth" => c
            .add_auth(a.arg(0), a.arg(1).as_bytes())
            .await
            .map_err(at(a.arg(0))),
        "sync" => {
            c.sync(a.arg(0)).await.map_err(at(a.arg(0)))?;
            say!("Sync is OK");
            Ok(())
        }
        "getEphemerals" => get_ephemerals(c, a).await,
        "getAllChildrenNumber" => {
            let n = c
                .get_all_children_number(a.arg(0))
                .await
                .map_err(at(a.arg(0)))?;
            say!("{n}");
            Ok(())
        }
        "addWatch" => add_watch(c, a).await,
        "removewatches" => remove_watches(c, a).await,
        "whoami" => whoami(c).await,
        "config" => config(c, a).await,
        "reconfig" => super::reconfig::reconfig(c, a).await,
        "setquota" => quota::set(c, a).await,
        "listquota" => quota::list(c, a).await,
        "delquota" => quota::delete(c, a).await,
        other => Err(Failure::Message(format!("Unknown command: {other}"))),
    }
}

async fn create(c: &ZkClient, a: &Args) -> Done {
    let path = a.arg(0);
    let data = a.arg(1).as_bytes();
    let acl = match a.rest.get(2) {
        Some(text) => {
            parse_acl(text).ok_or_else(|| Failure::Message(format!("Acl is not valid : {path}")))?
        }
        None => open_acl(),
    };
    let created = match a.value("-t") {
        None => {
            let mode = match (a.has("-e"), a.has("-s"), a.has("-c")) {
                (_, _, true) => CreateMode::Container,
                (true, true, _) => CreateMode::EphemeralSequential,
                (true, false, _) => CreateMode::Ephemeral,
                (false, true, _) => CreateMode::PersistentSequential,
                _ => CreateMode::Persistent,
            };
            c.create_with_acl(path, data, acl, mode).await
        }
        Some(ttl) => {
            let message = |m: &str| Failure::Message(m.to_string());
            let ttl: i64 = ttl
                .parse()
                .map_err(|_| message("-t argument must be a long value"))?;
            if a.has("-e") {
                return Err(message("TTLs cannot be used with Ephemeral znodes"));
            }
            if a.has("-c") {
                return Err(message("TTLs cannot be used with Container znodes"));
            }
            // The server validates the TTL, as it does for zkCli.
            let mode = if a.has("-s") {
                CreateMode::PersistentSequentialWithTtl { ttl_ms: ttl }
            } else {
                CreateMode::PersistentWithTtl { ttl_ms: ttl }
            };
            c.create_with_acl(path, data, acl, mode).await
        }
    }
    .map_err(at(path))?;
    say!("Created {created}");
    Ok(())
}

async fn get(c: &ZkClient, a: &Args) -> Done {
    let path = a.arg(0);
    let (data, stat) = c
        .get_nullable_data(path, a.has("-w"))
        .await
        .map_err(at(path))?;
    // zkCli.sh prints null data as "null".
    say!(
        "{}",
        data.map_or("null".into(), |d| String::from_utf8_lossy(&d).into_owned())
    );
    if a.has("-s") {
        print_stat(&stat);
    }
    Ok(())
}

async fn set(c: &ZkClient, a: &Args) -> Done {
    let path = a.arg(0);
    let stat = c
        .set_data(path, a.arg(1).as_bytes(), version(a)?)
        .await
        .map_err(at(path))?;
    if a.has("-s") {
        print_stat(&stat);
    }
    Ok(())
}

async fn stat(c: &ZkClient, a: &Args) -> Done {
    let path = a.arg(0);
    match c.exists_watch(path, a.has("-w")).await.map_err(at(path))? {
        Some(s) => {
            print_stat(&s);
            Ok(())
        }
        None => Err(at(path)(ClientError::Server(ZkError::NoNode))),
    }
}

/// `parent/child`, without doubling the root's slash.
fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// `root` and every znode below it, parents before children, siblings sorted.
pub(super) async fn subtree(c: &ZkClient, root: &str) -> Result<Vec<String>, Failure> {
    let mut order = Vec::new();
    let mut stack = vec![root.to_string()];
    while let Some(p) = stack.pop() {
        let (mut children, _) = c.get_children(&p, false).await.map_err(at(&p))?;
        children.sort();
        stack.extend(children.iter().rev().map(|ch| child_path(&p, ch)));
        order.push(p);
    }
    Ok(order)
}

async fn ls(c: &ZkClient, a: &Args) -> Done {
    let path = a.arg(0);
    if a.has("-R") {
        return ls_recursive(c, path, a.has("-w")).await;
    }
    let (mut children, stat) = c.get_children(path, a.has("-w")).await.map_err(at(path))?;
    children.sort();
    say!("[{}]", children.join(", "));
    if a.has("-s") {
        print_stat(&stat);
    }
    Ok(())
}

/// `ls -R` in zkCli's order, printed as it goes: the node, then for each node visited all its
/// children (sorted) before descending into them one by one; a node deleted meanwhile is skipped.
async fn ls_recursive(c: &ZkClient, root: &str, watch: bool) -> Done {
    c.get_data_watch(root, watch).await.map_err(at(root))?;
    say!("{root}");
    let mut stack = vec![root.to_string()];
    while let Some(p) = stack.pop() {
        let mut children = match c.get_children(&p, watch).await {
            Ok((children, _)) => children,
            Err(ClientError::Server(ZkError::NoNode)) => continue,
            Err(e) => return Err(at(&p)(e)),
        };
        children.sort();
        let paths: Vec<String> = children.iter().map(|ch| child_path(&p, ch)).collect();
        for child in &paths {
            say!("{child}");
        }
        stack.extend(paths.into_iter().rev());
    }
    Ok(())
}

async fn deleteall(c: &ZkClient, path: &str) -> Done {
    for p in subtree(c, path).await?.iter().rev() {
        c.delete(p, -1).await.map_err(at(p))?;
    }
    Ok(())
}

async fn get_acl(c: &ZkClient, a: &Args) -> Done {
    let path = a.arg(0);
    let (acl, stat) = c.get_acl(path).await.map_err(at(path))?;
    for entry in acl {
        say!(
            "'{},'{}\n: {}",
            entry.id.scheme,
            entry.id.id,
            perms_string(entry.perms)
        );
    }
    if a.has("-s") {
        print_stat(&stat);
    }
    Ok(())
}

async fn set_acl(c: &ZkClient, a: &Args) -> Done {
    let path = a.arg(0);
    let acl = parse_acl(a.arg(1))
        .ok_or_else(|| Failure::Message(format!("Acl is not valid : {path}")))?;
    let targets = if a.has("-R") {
        subtree(c, path).await?
    } else {
        vec![path.to_string()]
    };
    let version = version(a)?;
    for p in &targets {
        let stat = c.set_acl(p, acl.clone(), version).await.map_err(at(p))?;
        if a.has("-s") && p == path {
            print_stat(&stat);
        }
    }
    Ok(())
}

async fn get_ephemerals(c: &ZkClient, a: &Args) -> Done {
    let path = a.rest.first().map_or("/", String::as_str);
    let mut list = c.get_ephemerals(path).await.map_err(at(path))?;
    list.sort();
    say!("[{}]", list.join(", "));
    Ok(())
}

async fn add_watch(c: &ZkClient, a: &Args) -> Done {
    let mode = match a.value("-m") {
        None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
        Some("PERSISTENT") => AddWatchMode::Persistent,
        Some(_) => return Err(Failure::Usage),
    };
    c.add_watch(a.arg(0), mode).await.map_err(at(a.arg(0)))
}

async fn remove_watches(c: &ZkClient, a: &Args) -> Done {
    let kind = if a.has("-c") {
        WatcherType::Children
    } else if a.has("-d") {
        WatcherType::Data
    } else {
        WatcherType::Any
    };
    c.remove_watches(a.arg(0), kind).await.map_err(at(a.arg(0)))
}

async fn whoami(c: &ZkClient) -> Done {
    let ids = c.who_am_i().await.map_err(at(""))?;
    say!("Auth scheme: User");
    for (scheme, user) in ids {
        say!("{scheme}: {user}");
    }
    Ok(())
}

/// The dynamic configuration znode `config` reads.
const CONFIG_NODE: &str = "/zookeeper/config";

async fn config(c: &ZkClient, a: &Args) -> Done {
    let (data, stat) = c
        .get_data_watch(CONFIG_NODE, a.has("-w"))
        .await
        .map_err(at(CONFIG_NODE))?;
    let text = String::from_utf8_lossy(&data);
    if a.has("-c") {
        say!("{}", client_config(&text));
    } else {
        say!("{text}");
    }
    if a.has("-s") {
        print_stat(&stat);
    }
    Ok(())
}

/// `config -c`: the config's version and its servers' client addresses, `version a:p,b:q`.
fn client_config(config: &str) -> String {
    let mut version = "";
    let mut clients = Vec::new();
    for (key, value) in config.lines().filter_map(|l| l.split_once('=')) {
        let (key, value) = (key.trim(), value.trim());
        if key == "version" {
            version = value;
        } else if key.starts_with("server.") {
            if let Some((quorum, client)) = value.split_once(';') {
                clients.push(if client.contains(':') {
                    client.to_string()
                } else {
                    let host = quorum.split(':').next().unwrap_or_default();
                    format!("{host}:{client}")
                });
            }
        }
    }
    format!("{version} {}", clients.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_config_lists_client_addresses() {
        let config = "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
            server.2=10.0.0.2:2888:3888:participant;2182\nversion=100000000";
        assert_eq!(
            client_config(config),
            "100000000 0.0.0.0:2181,10.0.0.2:2182"
        );
    }
}
