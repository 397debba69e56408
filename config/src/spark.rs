//! Settings of Spark-style masters and workers, from a Spark properties file with Spark's key
//! names. Defaults are chosen for failover in seconds, not Spark's minutes; each differs from
//! Spark's only where noted.

use crate::ConfigError;
use std::collections::BTreeMap;
use std::time::Duration;

/// How a master keeps its state across failovers (spark.deploy.recoveryMode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// No persistence and no election: the master is ALIVE alone.
    None,
    /// A single master keeping its records in a directory (spark.deploy.recoveryDirectory).
    FileSystem {
        /// The directory.
        dir: std::path::PathBuf,
    },
    /// Elect and persist through an ensemble.
    ZooKeeper {
        /// spark.deploy.zookeeper.url, as `host:port` entries.
        servers: Vec<String>,
        /// spark.deploy.zookeeper.dir (default `/spark`).
        dir: String,
        /// spark.deploy.zookeeper.sessionTimeout, an ensemble addition (default 3 s; Spark
        /// hard-codes 60 s). The ensemble clamps it to its session bounds.
        session_timeout: Duration,
        /// spark.deploy.zookeeper.masterAuth, an ensemble addition: the masters' shared digest
        /// credential `user:password`. The ALIVE master publishes its session under a znode only
        /// this credential reads, so that a standby can close the session of a master whose
        /// process is gone; without it, failover waits for the session to expire.
        master_auth: Option<String>,
    },
}

/// The masters' digest credential `user:password` under spark.deploy.zookeeper.masterAuth,
/// if set.
fn master_auth(props: &BTreeMap<String, String>) -> Result<Option<String>, ConfigError> {
    let Some(v) = props.get("spark.deploy.zookeeper.masterAuth") else {
        return Ok(None);
    };
    match v.split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(Some(v.clone())),
        _ => Err(ConfigError::Invalid(
            "spark.deploy.zookeeper.masterAuth must be user:password, both non-empty".into(),
        )),
    }
}

/// Timing shared by masters and workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparkTiming {
    /// spark.worker.timeout (default 10 s; Spark: 60 s). Workers heartbeat every quarter of it.
    pub worker_timeout: Duration,
    /// spark.deploy.recoveryTimeout (default: the worker timeout, as Spark).
    pub recovery_timeout: Duration,
    /// spark.dead.worker.persistence: how many timeouts a DEAD worker stays listed (15).
    pub dead_worker_persistence: u64,
}

/// A master's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterConfig {
    /// spark.deploy.recoveryMode and its parameters.
    pub recovery: RecoveryMode,
    /// Worker and recovery timing.
    pub timing: SparkTiming,
    /// spark.deploy.spreadOut (default true): spread executors over workers.
    pub spread_out: bool,
    /// spark.deploy.defaultCores: cores of an application that sets no spark.cores.max
    /// (default: every core alive when it is submitted).
    pub default_cores: Option<u32>,
    /// spark.deploy.maxExecutorRetries (default 10): failed executors after which an
    /// application with none running FAILS; None for Spark's -1, unlimited.
    pub max_executor_retries: Option<u32>,
    /// spark.deploy.retainedApplications (default 200): ended applications kept and shown.
    pub retained_apps: usize,
    /// spark.deploy.retainedDrivers (default 200): ended drivers kept and shown.
    pub retained_drivers: usize,
    /// The port of the REST submission gateway when spark.master.rest.enabled is true
    /// (default false, as Spark 3.x): spark.master.rest.port, default 6066.
    pub rest_port: Option<u16>,
    /// spark.master.ui.decommission.allow.mode: who may use the web UI's kill-workers
    /// endpoint, LOCAL (default), DENY or ALLOW.
    pub decommission_allow_mode: String,
}

/// Parses Java properties text: `key value`, `key=value` or `key: value` lines; `#` and `!`
/// start comments.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .ok_or_else(|| {
                ConfigError::Parse(format!("properties line {}: {line:?} has no value", n + 1))
            })?;
        let key = line[..split].trim();
        let value = line[split..]
            .trim_start_matches(|c: char| c.is_whitespace())
            .trim_start_matches(['=', ':'])
            .trim();
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

/// Parses a Spark duration: a number with an optional unit (ms, s, m, min, h); a bare number
/// is in `bare_unit`.
pub fn parse_duration(
    key: &str,
    value: &str,
    bare_unit: Duration,
) -> Result<Duration, ConfigError> {
    let value = value.trim().to_ascii_lowercase();
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &value[digits.len()..];
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| ConfigError::Parse(format!("{key}={value} is not a duration")))?;
    let scale = match unit {
        "" => bare_unit,
        "ms" => Duration::from_millis(1),
        "s" => Duration::from_secs(1),
        "m" | "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => {
            return Err(ConfigError::Parse(format!(
                "{key}={value}: unknown unit {unit:?} (use ms, s, m or h)"
            )))
        }
    };
    Ok(scale * n as u32)
}

/// Parses a Spark memory size (`512m`, `2g`, `1024k`; a bare number is MiB) into MiB.
pub fn parse_memory_mb(value: &str) -> Result<u64, ConfigError> {
    let v = value.trim().to_ascii_lowercase();
    let v = v.strip_suffix('b').unwrap_or(&v);
    let (digits, mb_per_unit, kb) = match v.chars().last() {
        Some('k') => (&v[..v.len() - 1], 1, true),
        Some('m') => (&v[..v.len() - 1], 1, false),
        Some('g') => (&v[..v.len() - 1], 1024, false),
        Some('t') => (&v[..v.len() - 1], 1024 * 1024, false),
        _ => (v, 1, false),
    };
    let n: u64 = digits.parse().map_err(|_| {
        ConfigError::Parse(format!("memory {value:?} is not a size like 512m or 2g"))
    })?;
    if kb {
        return Ok(n / 1024);
    }
    n.checked_mul(mb_per_unit)
        .ok_or_else(|| ConfigError::Parse(format!("memory {value:?} is too large")))
}

/// Reads the timing keys, with ensemble's defaults.
pub fn timing(props: &BTreeMap<String, String>) -> Result<SparkTiming, ConfigError> {
    let secs = Duration::from_secs(1);
    let worker_timeout = match props.get("spark.worker.timeout") {
        Some(v) => parse_duration("spark.worker.timeout", v, secs)?,
        None => Duration::from_secs(10),
    };
    if worker_timeout < Duration::from_millis(400) {
        return Err(ConfigError::Invalid(format!(
            "spark.worker.timeout={worker_timeout:?} is under 400 ms"
        )));
    }
    let recovery_timeout = match props.get("spark.deploy.recoveryTimeout") {
        Some(v) => parse_duration("spark.deploy.recoveryTimeout", v, Duration::from_millis(1))?,
        None => worker_timeout,
    };
    let dead_worker_persistence = match props.get("spark.dead.worker.persistence") {
        Some(v) => v.parse().map_err(|_| {
            ConfigError::Parse(format!("spark.dead.worker.persistence={v} is not a count"))
        })?,
        None => 15,
    };
    Ok(SparkTiming {
        worker_timeout,
        recovery_timeout,
        dead_worker_persistence,
    })
}

impl MasterConfig {
    /// Validates a master's properties. Unlike Spark, an unknown recovery mode is an error,
    /// not a silent NONE.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mode = props
            .get("spark.deploy.recoveryMode")
            .map(|m| m.to_ascii_uppercase())
            .unwrap_or_else(|| "NONE".into());
        let recovery =
            match mode.as_str() {
                "NONE" => RecoveryMode::None,
                "ZOOKEEPER" => {
                    let url = props.get("spark.deploy.zookeeper.url").ok_or_else(|| {
                        ConfigError::Invalid(
                            "spark.deploy.recoveryMode=ZOOKEEPER needs spark.deploy.zookeeper.url"
                                .into(),
                        )
                    })?;
                    let servers: Vec<String> = url
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if servers.iter().any(|s| !s.contains(':')) || servers.is_empty() {
                        return Err(ConfigError::Invalid(format!(
                            "spark.deploy.zookeeper.url={url} must list host:port entries"
                        )));
                    }
                    let dir = props
                        .get("spark.deploy.zookeeper.dir")
                        .cloned()
                        .unwrap_or_else(|| "/spark".into());
                    if !dir.starts_with('/') || dir.len() < 2 || dir.ends_with('/') {
                        return Err(ConfigError::Invalid(format!(
                            "spark.deploy.zookeeper.dir={dir} must be an absolute znode path"
                        )));
                    }
                    let session_timeout = match props.get("spark.deploy.zookeeper.sessionTimeout") {
                        Some(v) => parse_duration(
                            "spark.deploy.zookeeper.sessionTimeout",
                            v,
                            Duration::from_millis(1),
                        )?,
                        None => Duration::from_secs(3),
                    };
                    RecoveryMode::ZooKeeper {
                        servers,
                        dir,
                        session_timeout,
                        master_auth: master_auth(props)?,
                    }
                }
                "FILESYSTEM" => match props.get("spark.deploy.recoveryDirectory") {
                    Some(dir) if !dir.is_empty() => RecoveryMode::FileSystem { dir: dir.into() },
                    _ => return Err(ConfigError::Invalid(
                        "spark.deploy.recoveryMode=FILESYSTEM needs spark.deploy.recoveryDirectory"
                            .into(),
                    )),
                },
                other => {
                    return Err(ConfigError::Invalid(format!(
                        "spark.deploy.recoveryMode={other} is not NONE, FILESYSTEM or ZOOKEEPER"
                    )))
                }
            };
        let spread_out = match props.get("spark.deploy.spreadOut").map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => {
                return Err(ConfigError::Invalid(format!(
                    "spark.deploy.spreadOut={v} is not true or false"
                )))
            }
        };
        let default_cores = match props.get("spark.deploy.defaultCores") {
            None => None,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "spark.deploy.defaultCores={v} is not a positive number"
                    )))
                }
            },
        };
        Ok(MasterConfig {
            recovery,
            timing: timing(props)?,
            spread_out,
            default_cores,
            max_executor_retries: max_executor_retries(props)?,
            retained_apps: count(props, "spark.deploy.retainedApplications", 200)?,
            retained_drivers: count(props, "spark.deploy.retainedDrivers", 200)?,
            rest_port: rest_port(props)?,
            decommission_allow_mode: allow_mode(props)?,
        })
    }
}

/// spark.master.ui.decommission.allow.mode, upper-cased: LOCAL (default), DENY or ALLOW.
fn allow_mode(props: &BTreeMap<String, String>) -> Result<String, ConfigError> {
    const KEY: &str = "spark.master.ui.decommission.allow.mode";
    let mode = props
        .get(KEY)
        .map_or("LOCAL".to_string(), |v| v.trim().to_ascii_uppercase());
    match mode.as_str() {
        "LOCAL" | "DENY" | "ALLOW" => Ok(mode),
        _ => Err(ConfigError::Invalid(format!(
            "{KEY}={mode} is not LOCAL, DENY or ALLOW"
        ))),
    }
}

/// The REST gateway's port when spark.master.rest.enabled is true (spark.master.rest.port,
/// default 6066), else None.
fn rest_port(props: &BTreeMap<String, String>) -> Result<Option<u16>, ConfigError> {
    if !flag(props, "spark.master.rest.enabled", false)? {
        return Ok(None);
    }
    match props.get("spark.master.rest.port") {
        None => Ok(Some(6066)),
        Some(v) => {
            v.trim().parse().map(Some).map_err(|_| {
                ConfigError::Invalid(format!("spark.master.rest.port={v} is not a port"))
            })
        }
    }
}

/// The boolean under `key` (`true` or `false`, in any case), or `default` when it is not set.
pub fn flag(
    props: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match props.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(ConfigError::Invalid(format!(
            "{key}={v} is not true or false"
        ))),
    }
}

/// The count under `key`, or `default` when it is not set.
fn count(
    props: &BTreeMap<String, String>,
    key: &str,
    default: usize,
) -> Result<usize, ConfigError> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("{key}={v} is not a count"))),
    }
}

/// spark.deploy.maxExecutorRetries: a count, or -1 for unlimited (None); default 10.
fn max_executor_retries(props: &BTreeMap<String, String>) -> Result<Option<u32>, ConfigError> {
    const KEY: &str = "spark.deploy.maxExecutorRetries";
    match props.get(KEY).map(|v| (v, v.parse::<i64>())) {
        None => Ok(Some(10)),
        Some((_, Ok(-1))) => Ok(None),
        Some((v, Ok(n))) => u32::try_from(n).map(Some).map_err(|_| {
            ConfigError::Invalid(format!("{KEY}={v} is not a count or -1 (unlimited)"))
        }),
        Some((v, Err(_))) => Err(ConfigError::Invalid(format!(
            "{KEY}={v} is not a count or -1 (unlimited)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> BTreeMap<String, String> {
        parse_properties(text).unwrap()
    }

    #[test]
    fn properties_take_spaces_equals_and_colons() {
        let p = props("# c\nspark.a 1\nspark.b=2\nspark.c : three four\n\n! also a comment\n");
        assert_eq!(p["spark.a"], "1");
        assert_eq!(p["spark.b"], "2");
        assert_eq!(p["spark.c"], "three four");
        assert!(parse_properties("lonely").is_err());
    }

    #[test]
    fn zookeeper_mode_with_defaults_and_errors() {
        let c = MasterConfig::from_properties(&props(
            "spark.deploy.recoveryMode ZOOKEEPER\nspark.deploy.zookeeper.url a:1,b:2\n",
        ))
        .unwrap();
        assert_eq!(
            c.recovery,
            RecoveryMode::ZooKeeper {
                servers: vec!["a:1".into(), "b:2".into()],
                dir: "/spark".into(),
                session_timeout: Duration::from_secs(3),
                master_auth: None,
            }
        );
        let with_auth = |v: &str| {
            MasterConfig::from_properties(&props(&format!(
                "spark.deploy.recoveryMode ZOOKEEPER\nspark.deploy.zookeeper.url a:1\n\
                 spark.deploy.zookeeper.masterAuth {v}\n"
            )))
            .map(|c| c.recovery)
        };
        assert!(matches!(
            with_auth("masters:s3cret:x"),
            Ok(RecoveryMode::ZooKeeper { master_auth: Some(a), .. }) if a == "masters:s3cret:x"
        ));
        for bad in ["masters", ":pw", "masters:"] {
            let e = with_auth(bad).unwrap_err().to_string();
            assert!(e.contains("masterAuth must be user:password"), "{bad}: {e}");
        }
        assert_eq!(c.timing.worker_timeout, Duration::from_secs(10));
        assert_eq!(c.timing.recovery_timeout, Duration::from_secs(10));
        let e = MasterConfig::from_properties(&props("spark.deploy.recoveryMode ZOOKEPER\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "spark.deploy.recoveryMode=ZOOKEPER is not NONE, FILESYSTEM or ZOOKEEPER"
        );
        let e = MasterConfig::from_properties(&props("spark.deploy.recoveryMode=zookeeper\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs spark.deploy.zookeeper.url"), "{e}");
        let fs = MasterConfig::from_properties(&props(
            "spark.deploy.recoveryMode FILESYSTEM\nspark.deploy.recoveryDirectory /var/lib/m\n",
        ))
        .unwrap();
        assert_eq!(
            fs.recovery,
            RecoveryMode::FileSystem {
                dir: "/var/lib/m".into()
            }
        );
        let e = MasterConfig::from_properties(&props("spark.deploy.recoveryMode FILESYSTEM\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs spark.deploy.recoveryDirectory"), "{e}");
        let capped =
            MasterConfig::from_properties(&props("spark.deploy.defaultCores 4\n")).unwrap();
        assert_eq!(capped.default_cores, Some(4));
        assert!(MasterConfig::from_properties(&props("spark.deploy.defaultCores 0\n")).is_err());
        let none = MasterConfig::from_properties(&BTreeMap::new()).unwrap();
        assert_eq!(none.recovery, RecoveryMode::None);
    }

    #[test]
    fn max_executor_retries_is_a_count_or_minus_one() {
        let retries = |text: &str| {
            MasterConfig::from_properties(&props(text)).map(|c| c.max_executor_retries)
        };
        assert_eq!(retries("").unwrap(), Some(10));
        assert_eq!(
            retries("spark.deploy.maxExecutorRetries 3\n").unwrap(),
            Some(3)
        );
        assert_eq!(
            retries("spark.deploy.maxExecutorRetries 0\n").unwrap(),
            Some(0)
        );
        assert_eq!(
            retries("spark.deploy.maxExecutorRetries -1\n").unwrap(),
            None
        );
        for bad in ["-2", "ten", "99999999999", "1.5"] {
            let e = retries(&format!("spark.deploy.maxExecutorRetries {bad}\n"))
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("spark.deploy.maxExecutorRetries={bad} is not a count or -1 (unlimited)")
            );
        }
    }

    #[test]
    fn retained_applications_and_drivers_default_to_200() {
        let kept = |text: &str| {
            MasterConfig::from_properties(&props(text))
                .map(|c| (c.retained_apps, c.retained_drivers))
        };
        assert_eq!(kept("").unwrap(), (200, 200));
        let text = "spark.deploy.retainedApplications 5\nspark.deploy.retainedDrivers 7\n";
        assert_eq!(kept(text).unwrap(), (5, 7));
        let e = kept("spark.deploy.retainedDrivers -1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "spark.deploy.retainedDrivers=-1 is not a count"
        );
    }

    #[test]
    fn the_rest_gateway_is_off_unless_enabled_and_listens_on_6066() {
        let port = |text: &str| MasterConfig::from_properties(&props(text)).map(|c| c.rest_port);
        assert_eq!(port("").unwrap(), None);
        assert_eq!(port("spark.master.rest.enabled false\n").unwrap(), None);
        assert_eq!(
            port("spark.master.rest.enabled TRUE\n").unwrap(),
            Some(6066)
        );
        let text = "spark.master.rest.enabled true\nspark.master.rest.port 7066\n";
        assert_eq!(port(text).unwrap(), Some(7066));
        let e = port("spark.master.rest.enabled yes\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "spark.master.rest.enabled=yes is not true or false"
        );
        assert!(port("spark.master.rest.enabled true\nspark.master.rest.port 70000\n").is_err());
        let mode = |text: &str| {
            MasterConfig::from_properties(&props(text)).map(|c| c.decommission_allow_mode)
        };
        assert_eq!(mode("").unwrap(), "LOCAL");
        let allow = "spark.master.ui.decommission.allow.mode allow\n";
        assert_eq!(mode(allow).unwrap(), "ALLOW");
        assert!(mode("spark.master.ui.decommission.allow.mode maybe\n").is_err());
    }

    #[test]
    fn durations_and_sizes_use_sparks_units() {
        let s = Duration::from_secs(1);
        assert_eq!(
            parse_duration("k", "60", s).unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            parse_duration("k", "250ms", s).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("k", "2min", s).unwrap(),
            Duration::from_secs(120)
        );
        assert!(parse_duration("k", "5 parsecs", s).is_err());
        assert_eq!(parse_memory_mb("512m").unwrap(), 512);
        assert_eq!(parse_memory_mb("2g").unwrap(), 2048);
        assert_eq!(parse_memory_mb("2048k").unwrap(), 2);
        assert_eq!(parse_memory_mb("300").unwrap(), 300);
        assert!(parse_memory_mb("lots").is_err());
        assert!(
            parse_memory_mb("18446744073709551615t").is_err(),
            "no overflow"
        );
        let t = timing(&props(
            "spark.worker.timeout 2\nspark.deploy.recoveryTimeout 500ms\n",
        ))
        .unwrap();
        assert_eq!(
            (t.worker_timeout, t.recovery_timeout),
            (2 * s, Duration::from_millis(500))
        );
    }
}
