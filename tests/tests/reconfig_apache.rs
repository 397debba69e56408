//! Reconfig against Apache ZooKeeper 3.8 (Debian's package), differentially: the same
//! 3-server zoo.cfg ensemble in Apache's dynamic layout (`dynamicConfigFile`, reconfigEnabled,
//! a super digest) run by Apache (127.0.206.x) and by ensemble (127.0.205.x) gets the same
//! reconfig requests through kazoo (`tests/interop/kazoo_reconfig_errors.py`) and answers with
//! the same codes and config text; then a server removed and added back leaves the same files
//! beside each zoo.cfg (modulo paths, addresses and zxids); a full restart of ensemble comes
//! back with that membership, and Apache started on the files ensemble left serves it too.
//! A server with reconfig off answers ReconfigDisabled in both. Servers whose lines name no
//! client address (each serving on its `clientPort`, on 127.0.20{5,6}.3x) leave it out of the
//! config text and dynamic files, and keep `clientPort` in zoo.cfg, in both. About 8 s.

use ensemble_actors::zk_client::{ClientError, ZkClient};
use ensemble_messages::zk::ZkError;
use ensemble_node::four_letter;
use ensemble_node::local_cluster::{die_with_parent, wait_until, ProcessCluster};
use ensemble_tests::runtime;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");
const SUPER: &str = "super:secret";
const ENSEMBLE: u8 = 205;
const APACHE: u8 = 206;
const START: Duration = Duration::from_secs(60);
const CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/*";

fn server_line(block: u8, id: u64) -> String {
    format!("server.{id}=127.0.{block}.{id}:2888:3888:participant;127.0.{block}.{id}:2181")
}

/// Server `i`'s zoo.cfg in Apache's dynamic layout; its `zoo-<i>.cfg.dynamic` (the server lines,
/// version 0) is written beside it, in `data`'s parent.
fn dynamic_layout(block: u8, size: u64, i: u64, data: &Path, enabled: bool) -> String {
    let dir = data.parent().expect("dataDir has a parent");
    let dynamic = dir.join(format!("zoo-{i}.cfg.dynamic"));
    let lines: Vec<String> = (1..=size).map(|j| server_line(block, j)).collect();
    std::fs::write(&dynamic, lines.join("\n") + "\n").expect("write the dynamic file");
    format!(
        "tickTime=200\ninitLimit=50\nsyncLimit=25\ndataDir={}\n4lw.commands.whitelist=*\n\
         admin.enableServer=false\nreconfigEnabled={enabled}\n\
         DigestAuthenticationProvider.superDigest={}\ndynamicConfigFile={}\n",
        data.display(),
        ensemble_actors::client_port::digest_id(SUPER),
        dynamic.display()
    )
}

/// Apache ZooKeeper servers, one JVM each, killed on drop.
struct Apache {
    procs: BTreeMap<u64, Child>,
}

impl Apache {
    /// Writes server `i`'s dataDir/myid and zoo.cfg (`cfg(i, dataDir)`) under `dir` and starts
    /// every server.
    fn start(dir: &Path, size: u64, cfg: impl Fn(u64, &Path) -> String) -> (Apache, Vec<PathBuf>) {
        let files: Vec<PathBuf> = (1..=size)
            .map(|i| {
                let data = dir.join(format!("zk-{i}"));
                std::fs::create_dir_all(&data).unwrap();
                std::fs::write(data.join("myid"), format!("{i}\n")).unwrap();
                let path = dir.join(format!("zoo-{i}.cfg"));
                std::fs::write(&path, cfg(i, &data)).unwrap();
                path
            })
            .collect();
        (Apache::on_files(&files), files)
    }

    /// Starts Apache on existing zoo.cfg files (server `i` on `files[i - 1]`).
    fn on_files(files: &[PathBuf]) -> Apache {
        assert!(
            Path::new("/usr/share/java/zookeeper.jar").exists(),
            "Apache ZooKeeper 3.8 is needed (apt-get install zookeeper)"
        );
        let procs = (1..)
            .zip(files)
            .map(|(i, cfg)| {
                let log = std::fs::File::create(cfg.with_extension("log")).unwrap();
                let mut c = Command::new("java");
                c.args(["-Xmx256m", "-cp", CLASSPATH])
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(cfg)
                    .stdout(log.try_clone().unwrap())
                    .stderr(log);
                die_with_parent(&mut c);
                (i, c.spawn().expect("java runs"))
            })
            .collect();
        Apache { procs }
    }

    fn stop(&mut self) {
        for (_, mut p) in std::mem::take(&mut self.procs) {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.stop();
    }
}

fn client(block: u8, id: u64) -> String {
    format!("127.0.{block}.{id}:2181")
}

/// Waits until servers `ids` of `block` serve as one leader and followers.
fn wait_serving(block: u8, ids: &[u64]) {
    let addrs: Vec<String> = ids.iter().map(|i| client(block, *i)).collect();
    wait_serving_at(&addrs);
}

/// Waits until the servers at client addresses `addrs` serve as one leader and followers.
fn wait_serving_at(addrs: &[String]) {
    wait_until("every server to serve", START, || {
        let modes: Vec<String> = addrs
            .iter()
            .map(|a| four_letter::mode(a, Duration::from_millis(500)))
            .collect();
        let leaders = modes.iter().filter(|m| *m == "leader").count();
        let followers = modes.iter().filter(|m| *m == "follower").count();
        leaders == 1 && leaders + followers == addrs.len()
    })
    .unwrap();
}

/// The answers of kazoo_reconfig_errors.py, asked through servers 1 and 2 of `block`.
fn kazoo_answers(block: u8) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/interop/kazoo_reconfig_errors.py"
    );
    let moved = server_line(block, 3).replace(":2181", ":2182");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("{},{}", client(block, 1), client(block, 2)))
        .arg(SUPER)
        .arg(server_line(block, 3))
        .arg(moved)
        .output()
        .expect("python3 runs (./scripts/test installs kazoo)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// ensemble's answers where it deliberately differs from Apache 3.8 (README, Dynamic
/// reconfig): a leaving id that is not a number is BadArguments (Apache: MarshallingError,
/// its NumberFormatException), an id named twice and both forms mixed are BadArguments (Apache
/// keeps the last spec, and ignores joining/leaving beside newMembers).
fn deliberately_different(apache: &str) -> String {
    apache
        .lines()
        .map(|l| match l.split(' ').next() {
            Some("bad_leaving_id") => "bad_leaving_id -8".to_string(),
            Some(n @ ("duplicate_id" | "incremental_and_new_members")) => format!("{n} -8"),
            _ => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect()
}

/// A server's files beside its zoo.cfg, comparable across runs: zoo.cfg's lines sorted (Apache
/// writes them in hash order), and the dynamic file it points at; paths, the loopback block and
/// the version in the file name normalized.
fn files_of(zoo_cfg: &Path, block: u8) -> (Vec<String>, String) {
    let dir = zoo_cfg.parent().unwrap().display().to_string();
    let norm = |s: &str| {
        s.replace(&dir, "DIR")
            .replace(&format!("127.0.{block}."), "127.0.B.")
    };
    let text = std::fs::read_to_string(zoo_cfg).unwrap();
    let mut lines: Vec<String> = text.lines().map(norm).collect();
    lines.sort();
    let pointer = text
        .lines()
        .find_map(|l| l.strip_prefix("dynamicConfigFile="))
        .expect("zoo.cfg names its dynamicConfigFile");
    let dynamic = std::fs::read_to_string(pointer).unwrap();
    let version = pointer.rsplit('.').next().unwrap_or_default().to_string();
    let lines = lines
        .into_iter()
        .map(|l| l.replace(&format!(".dynamic.{version}"), ".dynamic.V"))
        .collect();
    (lines, norm(&dynamic))
}

/// A reconfig through server 1 or 2 of `block` as the super user, asked again after a lost
/// connection (a removed leader's followers elect again, which drops their clients);
/// returns the new config text.
fn reconfig(block: u8, joining: &str, leaving: &str) -> String {
    reconfig_via(&[client(block, 1), client(block, 2)], joining, leaving)
}

/// A reconfig through the servers at `hosts`, as [`reconfig`] asks it.
fn reconfig_via(hosts: &[String], joining: &str, leaving: &str) -> String {
    let rt = runtime();
    let mut text = None;
    wait_until("the reconfig to commit", START, || {
        let answer = rt.block_on(async {
            let z = ZkClient::connect(hosts, Duration::from_secs(5)).await?;
            z.add_auth("digest", SUPER.as_bytes()).await?;
            z.reconfig(joining, leaving, "", -1).await
        });
        match answer {
            Ok((data, _)) => text = Some(String::from_utf8(data).unwrap()),
            // The client found no server to reconnect to within its session timeout (4 s
            // here) while the servers elected again, a removed leader's followers: on a busy
            // machine Apache's can take that long. As after a lost connection, the outcome
            // is unknown, and a new session asks again.
            Err(ClientError::Server(ZkError::SessionExpired)) => {}
            Err(ClientError::Server(code)) => {
                panic!("{hosts:?} refused reconfig +{joining:?} -{leaving:?}: {code}")
            }
            Err(_) => {}
        }
        text.is_some()
    })
    .unwrap();
    text.unwrap_or_default()
}

/// Removes server 3 and adds it back; returns the final config text.
fn remove_and_add_back(block: u8) -> String {
    let removed = reconfig(block, "", "3");
    assert!(!removed.contains("server.3="), "{removed}");
    reconfig(block, &server_line(block, 3), "")
}

/// Waits until every server's zoo.cfg points at the dynamic file of `text`'s version.
fn wait_files(cfgs: &[PathBuf], text: &str) {
    let version = text.rsplit("version=").next().unwrap().to_string();
    wait_until("the new dynamic files", START, || {
        cfgs.iter().all(|c| {
            std::fs::read_to_string(c).is_ok_and(|t| t.contains(&format!(".dynamic.{version}\n")))
        })
    })
    .unwrap();
}

/// `/zookeeper/config` as server `addr` serves it after a sync. A server whose leader was
/// just removed closes its connections while it follows the next one (Apache's too), so a
/// lost connection is tried again, as a client would.
fn config_text(addr: &str) -> String {
    let rt = runtime();
    let mut last: Result<String, ClientError> = Ok(String::new());
    wait_until(&format!("/zookeeper/config from {addr}"), START, || {
        last = rt.block_on(async {
            let z = ZkClient::connect(&[addr.to_string()], Duration::from_secs(20)).await?;
            z.sync("/").await?;
            let (data, _) = z.get_data("/zookeeper/config").await?;
            Ok(String::from_utf8_lossy(&data).into_owned())
        });
        // Done unless the connection was lost; any other error fails below.
        !matches!(last, Err(ClientError::ConnectionLoss(_)))
    })
    .unwrap();
    last.unwrap_or_else(|e| panic!("/zookeeper/config from {addr}: {e}"))
}

#[test]
fn reconfig_answers_and_files_are_apache_s() {
    let apache_dir = tempfile::tempdir().unwrap();
    let (mut apache, apache_cfgs) = Apache::start(apache_dir.path(), 3, |i, data| {
        dynamic_layout(APACHE, 3, i, data, true)
    });
    let mut c = ProcessCluster::with_zoo_cfg_text(
        3,
        ENSEMBLE,
        EXE.into(),
        |i, data| dynamic_layout(ENSEMBLE, 3, i, data, true),
        |i| client(ENSEMBLE, i),
    );
    c.start_all();
    c.wait_serving(START).unwrap();
    wait_serving(APACHE, &[1, 2, 3]);

    // The same requests, the same answers (but for the deliberate differences).
    let from_apache = kazoo_answers(APACHE).replace("127.0.206.", "127.0.B.");
    let from_ensemble = kazoo_answers(ENSEMBLE).replace("127.0.205.", "127.0.B.");
    assert_eq!(from_ensemble, deliberately_different(&from_apache));

    // Server 3 removed and added back: the same files beside every zoo.cfg.
    let ensemble_cfgs: Vec<PathBuf> = (1..=3)
        .map(|i| c.zoo_cfg_path(i).unwrap().clone())
        .collect();
    let text = remove_and_add_back(ENSEMBLE);
    let apache_text = remove_and_add_back(APACHE);
    wait_files(&apache_cfgs, &apache_text);
    wait_files(&ensemble_cfgs, &text);
    for i in 0..3 {
        let apache_files = files_of(&apache_cfgs[i], APACHE);
        assert_eq!(files_of(&ensemble_cfgs[i], ENSEMBLE), apache_files);
        assert!(apache_files.0.iter().all(|l| !l.starts_with("server.")));
    }
    apache.stop();

    // A full restart of ensemble comes back with that membership.
    for i in 1..=3 {
        c.kill9(i);
    }
    c.start_all();
    c.wait_serving(START).unwrap();
    assert_eq!(config_text(&client(ENSEMBLE, 1)), text);
    for i in 1..=3 {
        c.kill9(i);
    }

    // Apache started on the files ensemble left serves the same membership.
    let _back = Apache::on_files(&ensemble_cfgs);
    wait_serving(ENSEMBLE, &[1, 2, 3]);
    assert_eq!(config_text(&client(ENSEMBLE, 2)), text);
}

/// Server `i`'s host in the client-port layout: `127.0.<block>.3<i>`.
fn static_host(block: u8, i: u64) -> String {
    format!("127.0.{block}.{}", 30 + i)
}

fn static_client(block: u8, i: u64) -> String {
    format!("{}:2181", static_host(block, i))
}

/// Server `i`'s zoo.cfg with reconfig on and its server lines in it, none naming a client
/// address: each server serves on its `clientPort`/`clientPortAddress`.
fn client_port_layout(block: u8, i: u64, data: &Path) -> String {
    let mut cfg = format!(
        "tickTime=200\ninitLimit=50\nsyncLimit=25\ndataDir={}\nclientPort=2181\n\
         clientPortAddress={}\n4lw.commands.whitelist=*\nadmin.enableServer=false\n\
         reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={}\n",
        data.display(),
        static_host(block, i),
        ensemble_actors::client_port::digest_id(SUPER)
    );
    for j in 1..=3 {
        cfg.push_str(&format!("server.{j}={}:2888:3888\n", static_host(block, j)));
    }
    cfg
}

/// A config text with `block`'s addresses and its version normalized.
fn normalized(text: &str, block: u8) -> String {
    text.replace(&format!("127.0.{block}."), "127.0.B.")
        .lines()
        .map(|l| {
            if l.starts_with("version=") {
                "version=V"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// As in Apache, a client address that comes from `clientPort` is the server's static
/// setting: no config text nor dynamic file names it, zoo.cfg keeps `clientPort` after a
/// reconfig, and the server serves it across restarts.
#[test]
fn a_client_port_address_stays_static_as_in_apache() {
    let apache_dir = tempfile::tempdir().unwrap();
    let (mut apache, apache_cfgs) = Apache::start(apache_dir.path(), 3, |i, data| {
        client_port_layout(APACHE, i, data)
    });
    let mut c = ProcessCluster::with_zoo_cfg_text(
        3,
        ENSEMBLE,
        EXE.into(),
        |i, data| client_port_layout(ENSEMBLE, i, data),
        |i| static_client(ENSEMBLE, i),
    );
    c.start_all();
    c.wait_serving(START).unwrap();
    let apache_clients: Vec<String> = (1..=3).map(|i| static_client(APACHE, i)).collect();
    wait_serving_at(&apache_clients);
    let before = normalized(&config_text(&apache_clients[0]), APACHE);
    assert!(!before.contains(';'), "{before}");
    let ensemble_before = config_text(&static_client(ENSEMBLE, 1));
    assert_eq!(normalized(&ensemble_before, ENSEMBLE), before);

    // Server 3 removed: the same answer, config node and files.
    let ensemble_clients: Vec<String> = (1..=2).map(|i| static_client(ENSEMBLE, i)).collect();
    let text = reconfig_via(&ensemble_clients, "", "3");
    let apache_text = reconfig_via(&apache_clients[..2], "", "3");
    assert_eq!(
        normalized(&text, ENSEMBLE),
        normalized(&apache_text, APACHE)
    );
    assert!(!text.contains(';') && !text.contains("server.3="), "{text}");
    let ensemble_cfgs: Vec<PathBuf> = (1..=2)
        .map(|i| c.zoo_cfg_path(i).unwrap().clone())
        .collect();
    wait_files(&apache_cfgs[..2], &apache_text);
    wait_files(&ensemble_cfgs, &text);
    for i in 0..2 {
        let apache_files = files_of(&apache_cfgs[i], APACHE);
        assert_eq!(files_of(&ensemble_cfgs[i], ENSEMBLE), apache_files);
        assert!(apache_files.0.contains(&"clientPort=2181".to_string()));
        assert_eq!(
            normalized(&config_text(&ensemble_clients[i]), ENSEMBLE),
            normalized(&config_text(&apache_clients[i]), APACHE)
        );
    }
    apache.stop();

    // Restarted, servers 1 and 2 serve on their clientPort with that membership.
    for i in 1..=3 {
        c.kill9(i);
    }
    c.start(1);
    c.start(2);
    wait_serving_at(&ensemble_clients);
    assert_eq!(config_text(&ensemble_clients[0]), text);
}

/// A standalone zoo.cfg with reconfig off, serving on `127.0.<block>.20:2181`.
fn standalone(block: u8, data: &Path) -> String {
    format!(
        "tickTime=200\ndataDir={}\nclientPort=2181\nclientPortAddress=127.0.{block}.20\n\
         4lw.commands.whitelist=*\nadmin.enableServer=false\n\
         DigestAuthenticationProvider.superDigest={}\n",
        data.display(),
        ensemble_actors::client_port::digest_id(SUPER)
    )
}

/// The codes of a reconfig asked with and without super auth.
fn disabled_codes(addr: &str) -> Vec<ZkError> {
    let rt = runtime();
    rt.block_on(async {
        let mut codes = Vec::new();
        for admin in [true, false] {
            let z = ZkClient::connect(&[addr.to_string()], Duration::from_secs(20))
                .await
                .unwrap();
            if admin {
                z.add_auth("digest", SUPER.as_bytes()).await.unwrap();
            }
            codes.push(match z.reconfig("", "3", "", -1).await {
                Err(ClientError::Server(code)) => code,
                other => panic!("reconfig answered {other:?}"),
            });
        }
        codes
    })
}

#[test]
fn reconfig_disabled_is_refused_first_by_both() {
    let apache_dir = tempfile::tempdir().unwrap();
    let (_apache, _) = Apache::start(apache_dir.path(), 1, |_, data| standalone(APACHE, data));
    let mut c = ProcessCluster::with_zoo_cfg_text(
        1,
        ENSEMBLE,
        EXE.into(),
        |_, data| standalone(ENSEMBLE, data),
        |_| format!("127.0.{ENSEMBLE}.20:2181"),
    );
    c.start_all();
    c.wait_serving(START).unwrap();
    let apache_addr = format!("127.0.{APACHE}.20:2181");
    wait_until("Apache to serve", START, || {
        four_letter::mode(&apache_addr, Duration::from_millis(500)) == "standalone"
    })
    .unwrap();
    let codes = disabled_codes(&apache_addr);
    assert_eq!(codes, vec![ZkError::ReconfigDisabled; 2]);
    assert_eq!(disabled_codes(&c.client_addr(1)), codes);
}
