//! `setquota`, `listquota` and `delquota`, with zkCli 3.8's checks, output and wording.

use super::args::Args;
use super::commands::{at, subtree, Failure};
use ensemble_actors::data_tree::quota::{
    limit_path, stat_path, StatsTrack, BYTES, BYTES_HARD, COUNT, COUNT_HARD, LIMIT_NODE, QUOTA_ROOT,
};
use ensemble_actors::zk_client::{open_acl, ClientError, ZkClient};
use ensemble_messages::zk::{CreateMode, ZkError};
use std::io::Write;

type Done = Result<(), Failure>;

/// The StatsTrack key each flag sets, and what the flag is, as zkCli's option group says.
const FLAGS: [(&str, &str, &str); 4] = [
    ("-n", COUNT, "num soft quota"),
    ("-b", BYTES, "bytes soft quota"),
    ("-N", COUNT_HARD, "num hard quota"),
    ("-B", BYTES_HARD, "bytes hard quota"),
];

/// The one flag of zkCli's option group that was given, or its parser's complaint.
fn one_flag(a: &Args, required: bool) -> Result<Option<&'static str>, Failure> {
    let given: Vec<&str> = a
        .given()
        .iter()
        .filter_map(|g| FLAGS.iter().find(|f| f.0 == g).map(|f| f.0))
        .collect();
    match given.as_slice() {
        [] if required => {
            let all: Vec<String> = FLAGS.iter().map(|f| format!("{} {}", f.0, f.2)).collect();
            Err(Failure::Message(format!(
                "org.apache.commons.cli.MissingOptionException: Missing required option: [{}]",
                all.join(", ")
            )))
        }
        [] => Ok(None),
        [one] => Ok(Some(one)),
        [first, second, ..] => Err(Failure::Message(format!(
            "org.apache.commons.cli.AlreadySelectedException: The option '{}' was specified \
             but an option from this group has already been selected: '{}'",
            &second[1..],
            &first[1..]
        ))),
    }
}

/// The client library's refusal of a path before it is sent, where the quota commands hit it.
fn check_path(path: &str) -> Done {
    if !path.starts_with('/') {
        return Err(Failure::Message("Path must start with / character".into()));
    }
    if path.ends_with('/') {
        return Err(Failure::Message(
            "Path must not end with / character".into(),
        ));
    }
    Ok(())
}

/// A znode's data as a StatsTrack.
async fn read(c: &ZkClient, path: &str) -> Result<StatsTrack, ClientError> {
    c.get_data(path).await.map(|(d, _)| StatsTrack::parse(&d))
}

/// `setquota -n|-b|-N|-B val path`.
pub(super) async fn set(c: &ZkClient, a: &Args) -> Done {
    let flag = one_flag(a, true)?.unwrap_or_default();
    if a.rest.is_empty() {
        return Err(Failure::Usage);
    }
    let path = a.arg(0);
    if path.starts_with(QUOTA_ROOT) {
        complain!("cannot set a quota under the path: {QUOTA_ROOT}");
        return Ok(());
    }
    let Some(value) = flag_value(a, flag) else {
        return Ok(());
    };
    check_path(path)?;
    if c.exists(path).await.map_err(at(path))?.is_none() {
        return Err(Failure::Message(format!("{path} does not exist.")));
    }
    check_no_child_quota(c, path).await?;
    check_no_parent_quota(c, path).await?;
    let mut mirror = QUOTA_ROOT.to_string();
    for name in path.split('/').filter(|n| !n.is_empty()) {
        mirror = format!("{mirror}/{name}");
        create_if_missing(c, &mirror, b"").await?;
    }
    let (limits, stats) = (limit_path(path), stat_path(path));
    let key = FLAGS.iter().find(|f| f.0 == flag).map_or(COUNT, |f| f.1);
    if c.exists(&limits).await.map_err(at(&limits))?.is_none() {
        let mut quota = StatsTrack::default();
        for (_, k, _) in FLAGS {
            quota.set(k, -1);
        }
        quota.set(key, value);
        let mut usage = StatsTrack::default();
        usage.set(COUNT, 0);
        usage.set(BYTES, 0);
        create(c, &limits, quota.text().as_bytes()).await?;
        create(c, &stats, usage.text().as_bytes()).await?;
        let quota = read(c, &limits).await.map_err(at(&limits))?;
        warn_if_below_usage(&quota, &read(c, &stats).await.map_err(at(&stats))?);
    } else {
        let mut quota = read(c, &limits).await.map_err(at(&limits))?;
        quota.set(key, value);
        warn_if_below_usage(&quota, &read(c, &stats).await.map_err(at(&stats))?);
        c.set_data(&limits, quota.text().as_bytes(), -1)
            .await
            .map_err(at(&limits))?;
    }
    Ok(())
}

/// The value of `flag`, checked as zkCli does (its complaint printed, and None, when wrong).
fn flag_value(a: &Args, flag: &str) -> Option<i64> {
    let text = a.value(flag).unwrap_or_default();
    let counts = flag.eq_ignore_ascii_case("-n");
    let parsed = if counts {
        text.parse::<i32>().map(i64::from).ok()
    } else {
        text.parse::<i64>().ok()
    };
    match parsed {
        None => complain!("NumberFormatException happens when parsing the option value"),
        Some(v) if counts && v <= 0 => complain!("the num quota must be greater than zero"),
        Some(v) if v < 0 => complain!("the bytes quota must be greater than or equal to zero"),
        Some(v) => return Some(v),
    }
    None
}

async fn create(c: &ZkClient, path: &str, data: &[u8]) -> Done {
    c.create_with_acl(path, data, open_acl(), CreateMode::Persistent)
        .await
        .map(|_| ())
        .map_err(at(path))
}

async fn create_if_missing(c: &ZkClient, path: &str, data: &[u8]) -> Done {
    if c.exists(path).await.map_err(at(path))?.is_some() {
        return Ok(());
    }
    match c
        .create_with_acl(path, data, open_acl(), CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(ClientError::Server(ZkError::NodeExists)) => Ok(()),
        Err(e) => Err(at(path)(e)),
    }
}

/// zkCli's warnings when a new limit is already below the usage.
fn warn_if_below_usage(quota: &StatsTrack, usage: &StatsTrack) {
    let below = |soft: &str, hard: &str, used: i64| {
        let (s, h) = (quota.get(soft), quota.get(hard));
        (s > -1 && s < used) || (h > -1 && h < used)
    };
    let (count, bytes) = (usage.get(COUNT), usage.get(BYTES));
    if below(COUNT, COUNT_HARD, count) {
        say!("[Warning]: the count quota you create is less than the existing count:{count}");
    }
    if below(BYTES, BYTES_HARD, bytes) {
        say!("[Warning]: the bytes quota you create is less than the existing bytes:{bytes}");
    }
}

/// The quota path of a mirror znode under `/zookeeper/quota`.
fn trimmed(mirror: &str) -> &str {
    &mirror[QUOTA_ROOT.len().min(mirror.len())..]
}

/// zkCli refuses a quota on a path with a quota below it.
async fn check_no_child_quota(c: &ZkClient, path: &str) -> Done {
    let mirror = format!("{QUOTA_ROOT}{path}");
    let below = match subtree(c, &mirror).await {
        Ok(nodes) => nodes,
        Err(Failure::Client(ClientError::Server(ZkError::NoNode), _)) => return Ok(()),
        Err(f) => return Err(f),
    };
    for node in below.iter().filter(|n| **n != mirror) {
        let (children, _) = match c.get_children(node, false).await {
            Ok(found) => found,
            Err(ClientError::Server(ZkError::NoNode)) => continue,
            Err(e) => return Err(at(node)(e)),
        };
        if children.iter().any(|ch| ch == LIMIT_NODE) {
            return Err(Failure::Message(format!(
                "{path} has a child {} which has a quota",
                trimmed(node)
            )));
        }
    }
    Ok(())
}

/// zkCli refuses a quota on a path with a quota above it.
async fn check_no_parent_quota(c: &ZkClient, path: &str) -> Done {
    let names: Vec<&str> = path.split('/').skip(1).collect();
    let mut mirror = QUOTA_ROOT.to_string();
    for name in names.iter().take(names.len().saturating_sub(1)) {
        mirror = format!("{mirror}/{name}");
        let children = match c.get_children(&mirror, false).await {
            Ok((children, _)) => children,
            Err(ClientError::Server(ZkError::NoNode)) => return Ok(()),
            Err(e) => return Err(at(&mirror)(e)),
        };
        if children.is_empty() {
            return Ok(());
        }
        if children.iter().any(|ch| ch == LIMIT_NODE) {
            return Err(Failure::Message(format!(
                "{path} has a parent {} which has a quota",
                trimmed(&mirror)
            )));
        }
    }
    Ok(())
}

/// `listquota path`: the limits, then the usage.
pub(super) async fn list(c: &ZkClient, a: &Args) -> Done {
    let path = a.arg(0);
    check_path(path)?;
    complain!("absolute path is {}", limit_path(path));
    let both = match read(c, &limit_path(path)).await {
        Ok(quota) => read(c, &stat_path(path)).await.map(|usage| (quota, usage)),
        Err(e) => Err(e),
    };
    match both {
        Ok((quota, usage)) => {
            say!("Output quota for {path} {}", quota.text());
            say!("Output stat for {path} {}", usage.text());
            Ok(())
        }
        Err(ClientError::Server(ZkError::NoNode)) => {
            complain!("quota for {path} does not exist.");
            Ok(())
        }
        Err(e) => Err(at(path)(e)),
    }
}

/// `delquota [-n|-b|-N|-B] path`: one limit, or the whole quota and the mirror it leaves.
pub(super) async fn delete(c: &ZkClient, a: &Args) -> Done {
    let flag = one_flag(a, false)?;
    let path = a.arg(0);
    check_path(path)?;
    let limits = limit_path(path);
    if c.exists(&limits).await.map_err(at(&limits))?.is_none() {
        say!("Quota does not exist for {path}");
        return Ok(());
    }
    let outcome = match flag {
        Some(flag) => clear_limit(c, &limits, flag).await,
        None => remove_quota(c, path).await,
    };
    match outcome {
        Err(Failure::Client(ClientError::Server(ZkError::NoNode), _)) => {
            complain!("quota for {path} does not exist.");
            Ok(())
        }
        other => other,
    }
}

async fn clear_limit(c: &ZkClient, limits: &str, flag: &str) -> Done {
    let mut quota = read(c, limits).await.map_err(at(limits))?;
    let key = FLAGS.iter().find(|f| f.0 == flag).map_or(COUNT, |f| f.1);
    quota.set(key, -1);
    c.set_data(limits, quota.text().as_bytes(), -1)
        .await
        .map(|_| ())
        .map_err(at(limits))
}

/// Deletes the quota's znodes, then each mirror znode left childless, up to the quota root.
async fn remove_quota(c: &ZkClient, path: &str) -> Done {
    let mut mirror = format!("{QUOTA_ROOT}{path}");
    let (children, _) = c.get_children(&mirror, false).await.map_err(at(&mirror))?;
    for child in children {
        let p = format!("{mirror}/{child}");
        c.delete(&p, -1).await.map_err(at(&p))?;
    }
    while mirror != QUOTA_ROOT && mirror.starts_with(QUOTA_ROOT) {
        let (children, _) = c.get_children(&mirror, false).await.map_err(at(&mirror))?;
        if !children.is_empty() {
            break;
        }
        c.delete(&mirror, -1).await.map_err(at(&mirror))?;
        match mirror.rfind('/') {
            Some(i) => mirror.truncate(i),
            None => break,
        }
    }
    Ok(())
}
