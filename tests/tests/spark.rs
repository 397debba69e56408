//! Real Apache Spark (the jars of PyPI's `pyspark`, which `./scripts/test` installs) against a
//! 3-server ensemble started from `zoo.cfg` files: Spark 3.5 (Curator 2.13 with the ZooKeeper
//! 3.6 client) and Spark 4.0 (Curator 5.7 with the ZooKeeper 3.9 client), as Spark bundles them,
//! and Spark's own standalone masters failing over through the ensemble, the seed lab's
//! scenario.

use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Spark 4 release `./scripts/test` installs beside pyspark 3.5, under
/// `~/.cache/ensemble-tests/pyspark-<version>`.
const SPARK_4: &str = "4.0.5";

/// Where pyspark 4 keeps Spark (`bin/spark-class`, `jars/`).
fn spark_4_home() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let dir = home.join(format!(".cache/ensemble-tests/pyspark-{SPARK_4}/pyspark"));
    assert!(
        dir.join("bin/spark-class").exists(),
        "pyspark {SPARK_4} is missing from {}: run ./scripts/test, which installs it from PyPI",
        dir.display()
    );
    dir
}

/// Where pyspark 3.5 keeps Spark (`bin/spark-class`, `jars/`).
fn spark_home() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, pyspark; print(os.path.dirname(pyspark.__file__))",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pyspark is missing: run ./scripts/test, which installs it from PyPI"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn cluster(block: u8) -> ProcessCluster {
    let mut c = ProcessCluster::with_zoo_cfg(3, block, env!("CARGO_BIN_EXE_ensemble-cli").into());
    c.start_all();
    c.wait_serving(Duration::from_secs(20)).unwrap();
    c
}

/// The same Curator check as Curator 5's, compiled and run against Spark's Curator 2.13.
#[test]
fn curator_2_13_as_bundled_with_spark_works_unmodified() {
    let jars = format!("{}/jars/*", spark_home().display());
    let classes = tempfile::tempdir().unwrap();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/CuratorCheck.java");
    let built = Command::new("javac")
        .args(["-cp", &jars, "-d"])
        .arg(classes.path())
        .arg(source)
        .output()
        .expect("javac runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let c = cluster(41);
    let hosts: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let classpath = format!("{}:{jars}", classes.path().display());
    let out = Command::new("java")
        .args(["-cp", &classpath, "CuratorCheck"])
        .arg(hosts.join(","))
        .output()
        .expect("java runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("curator ok"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Spark daemon (master or worker) started with `spark-class`, killed when dropped.
struct SparkDaemon {
    child: Child,
    log: PathBuf,
}

impl SparkDaemon {
    /// Starts `class` bound to `ip`, logging to `dir/name.log`.
    fn start(home: &Path, dir: &Path, name: &str, ip: &str, class: &str, args: &[&str]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(home.join("bin/spark-class"))
            .arg(class)
            .args(args)
            .env("SPARK_HOME", home)
            .env("SPARK_LOCAL_IP", ip)
            .env("SPARK_DAEMON_MEMORY", "256m")
            .env("SPARK_WORKER_DIR", dir.join(format!("{name}-work")))
            .env("SPARK_LOG_DIR", dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("spark-class runs");
        SparkDaemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SparkDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The master's `/json` page, or an empty string while it does not answer.
fn master_json(ip: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect((ip, 8080)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /json/ HTTP/1.0\r\nHost: {ip}\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn status_is(json: &str, status: &str) -> bool {
    json.contains(&format!("\"status\" : \"{status}\""))
}

/// Spark 3.5's masters fail over through the ensemble.
#[test]
fn spark_standalone_masters_fail_over_through_the_ensemble() {
    masters_fail_over(&spark_home(), 42);
}

/// Spark 4.0's masters (Curator 5.7, ZooKeeper 3.9 client) fail over through the ensemble.
#[test]
fn spark_4_standalone_masters_fail_over_through_the_ensemble() {
    masters_fail_over(&spark_4_home(), 140);
}

/// Two real Spark masters of the Spark at `home` elect one ALIVE master through an ensemble on
/// 127.0.`block`.x; a worker registers with it; when the ALIVE master is killed, the STANDBY
/// one recovers the persisted worker from the ensemble and becomes ALIVE, within seconds.
fn masters_fail_over(home: &Path, block: u8) {
    let home = home.to_path_buf();
    let c = cluster(block);
    let hosts: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("ha.conf");
    std::fs::write(
        &props,
        format!(
            "spark.deploy.recoveryMode ZOOKEEPER\nspark.deploy.zookeeper.url {}\n\
             spark.deploy.zookeeper.dir /spark\n",
            hosts.join(",")
        ),
    )
    .unwrap();
    let props = props.to_str().unwrap().to_string();
    let master = |name: &str, ip: &str| {
        SparkDaemon::start(
            &home,
            dir.path(),
            name,
            ip,
            "org.apache.spark.deploy.master.Master",
            &[
                "--host",
                ip,
                "--port",
                "7077",
                "--webui-port",
                "8080",
                "--properties-file",
                &props,
            ],
        )
    };
    let (ip_a, ip_b) = (format!("127.0.{block}.11"), format!("127.0.{block}.12"));
    let (ip_a, ip_b) = (ip_a.as_str(), ip_b.as_str());
    let worker_ip = format!("127.0.{block}.21");
    let a = master("master-a", ip_a);
    wait_until("master A to be ALIVE", Duration::from_secs(90), || {
        status_is(&master_json(ip_a), "ALIVE")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", a.log()));
    let b = master("master-b", ip_b);
    wait_until("master B to be STANDBY", Duration::from_secs(90), || {
        status_is(&master_json(ip_b), "STANDBY")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", b.log()));
    let masters = format!("spark://{ip_a}:7077,{ip_b}:7077");
    let worker = SparkDaemon::start(
        &home,
        dir.path(),
        "worker",
        &worker_ip,
        "org.apache.spark.deploy.worker.Worker",
        &[
            "--host",
            &worker_ip,
            "--webui-port",
            "8081",
            "--cores",
            "1",
            "--memory",
            "512m",
            &masters,
        ],
    );
    wait_until(
        "the worker to register with A",
        Duration::from_secs(90),
        || master_json(ip_a).contains("\"aliveworkers\" : 1"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", worker.log()));
    drop(a);
    let killed = Instant::now();
    wait_until(
        "master B to recover the worker and be ALIVE",
        Duration::from_secs(90),
        || {
            let json = master_json(ip_b);
            status_is(&json, "ALIVE") && json.contains("\"aliveworkers\" : 1")
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", b.log(), worker.log()));
    println!(
        "Spark {} master failover through ensemble: {:.1} s from kill -9 to ALIVE with the worker",
        home.display(),
        killed.elapsed().as_secs_f64()
    );
    // The JVM's log may reach the file after the status page says ALIVE.
    wait_until(
        "B's log to say it was elected",
        Duration::from_secs(10),
        || b.log().contains("I have been elected leader!"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", b.log()));
}
