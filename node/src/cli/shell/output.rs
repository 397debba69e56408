//! How the shell prints: zkCli's error wording, Stat block and dates.

use ensemble_actors::zk_client::ClientError;
use ensemble_messages::jute::Stat;
use ensemble_messages::zk::{perm, ZkError};
use std::io::Write;

/// zkCli's wording of an error on `path`: its own sentence for the common codes, else
/// ZooKeeper's `KeeperErrorCode = <message> for <path>`.
pub(super) fn describe(e: &ClientError, path: &str) -> String {
    let code = match e {
        ClientError::Server(code) => *code,
        ClientError::ConnectionLoss(_) => ZkError::ConnectionLoss,
        ClientError::Marshalling(_) => ZkError::MarshallingError,
    };
    match code {
        ZkError::NoNode => format!("Node does not exist: {path}"),
        ZkError::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        ZkError::NodeExists => format!("Node already exists: {path}"),
        ZkError::NotEmpty => format!("Node not empty: {path}"),
        ZkError::NotReadOnly => format!("Not a read-only call: {path}"),
        ZkError::InvalidAcl => format!("Acl is not valid : {path}"),
        ZkError::NoAuth => format!("Insufficient permission : {path}"),
        ZkError::BadArguments => format!("Arguments are not valid : {path}"),
        ZkError::BadVersion => format!("version No is not valid : {path}"),
        ZkError::QuotaExceeded => format!("Quota has exceeded : {path}"),
        other => format!("KeeperErrorCode = {} for {path}", code_message(other)),
    }
}

/// ZooKeeper's message for an error code, as its KeeperException prints it.
fn code_message(code: ZkError) -> String {
    let text = match code {
        ZkError::SystemError => "SystemError",
        ZkError::RuntimeInconsistency => "RuntimeInconsistency",
        ZkError::DataInconsistency => "DataInconsistency",
        ZkError::ConnectionLoss => "ConnectionLoss",
        ZkError::MarshallingError => "MarshallingError",
        ZkError::Unimplemented => "Unimplemented",
        ZkError::OperationTimeout => "OperationTimeout",
        ZkError::BadArguments => "BadArguments",
        ZkError::NewConfigNoQuorum => "NewConfigNoQuorum",
        ZkError::ReconfigInProgress => "ReconfigInProgress",
        ZkError::ApiError => "APIError",
        ZkError::NoNode => "NoNode",
        ZkError::NoAuth => "NoAuth",
        ZkError::BadVersion => "BadVersion",
        ZkError::NoChildrenForEphemerals => "NoChildrenForEphemerals",
        ZkError::NodeExists => "NodeExists",
        ZkError::NotEmpty => "Directory not empty",
        ZkError::SessionExpired => "Session expired",
        ZkError::InvalidCallback => "Invalid callback",
        ZkError::InvalidAcl => "InvalidACL",
        ZkError::AuthFailed => "AuthFailed",
        ZkError::SessionMoved => "Session moved",
        ZkError::NotReadOnly => "Not a read-only call",
        ZkError::EphemeralOnLocalSession => "Ephemeral node on local session",
        ZkError::NoWatcher => "No such watcher",
        ZkError::ReconfigDisabled => "Reconfig is disabled",
        ZkError::SessionClosedRequireSaslAuth => {
            "Session closed because client failed to authenticate"
        }
        ZkError::QuotaExceeded => "Quota has exceeded",
        ZkError::Throttled => "Op throttled due to high load",
        other => return format!("Unknown error {}", other.code()),
    };
    text.to_string()
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

/// The Stat block zkCli prints for `-s` and `stat`.
pub(super) fn print_stat(s: &Stat) {
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

/// `cdrwa`-style permission letters.
pub(super) fn perms_string(p: i32) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_perms_and_errors_as_zkcli_prints_them() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_310_069_439), "Sun Nov 22 01:14:29 UTC 2026");
        assert_eq!(perms_string(31), "cdrwa");
        assert_eq!(
            describe(&ClientError::Server(ZkError::NoWatcher), "/a"),
            "KeeperErrorCode = No such watcher for /a"
        );
        assert_eq!(
            describe(&ClientError::ConnectionLoss("reset".into()), "/a"),
            "KeeperErrorCode = ConnectionLoss for /a"
        );
        assert_eq!(code_message(ZkError::ApiError), "APIError");
        assert_eq!(code_message(ZkError::UnknownSession), "Unknown error -12");
        assert_eq!(code_message(ZkError::Unknown(-999)), "Unknown error -999");
    }
}
