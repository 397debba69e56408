//! The masters' REST submission gateway (`spark.master.rest.enabled`, port 6066) as real
//! processes beside a real ensemble on 127.0.141.x: create, status and kill of cluster-mode
//! drivers with Spark's JSON messages, STANDBY masters' answers, hostile requests,
//! `ensemble submit --status/--kill`, and Apache Spark's own `spark-submit` (pyspark 3.5 and
//! 4.0) submitting, polling and killing through it.

use ensemble_node::local_cluster::wait_until;
use ensemble_tests::spark::{request, Topology};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");
const REST: u16 = 6066;

/// A request to the gateway at `ip`: the HTTP status and the JSON answered.
fn rest(ip: &str, method: &str, target: &str, body: &str) -> (u16, Value) {
    let (code, text) = request(ip, REST, method, target, "", body)
        .unwrap_or_else(|| panic!("{method} {target} on {ip}:{REST} answered"));
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (code, json)
}

/// A `CreateSubmissionRequest` running `sh -c script` with FOO=bar in its environment.
fn create_request(script: &str) -> String {
    json!({
        "action": "CreateSubmissionRequest",
        "clientSparkVersion": "3.5.3",
        "appResource": "file:/bin/sh",
        "appArgs": ["-c", script],
        "sparkProperties": {"spark.app.name": "rest", "spark.driver.memory": "64m"},
        "environmentVariables": {"FOO": "bar"},
    })
    .to_string()
}

/// Runs `ensemble submit` with `args`; returns (exit code, stdout + stderr).
fn submit(args: &[&str]) -> (i32, String) {
    let out = Command::new(EXE)
        .arg("submit")
        .args(args)
        .output()
        .expect("ensemble submit runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_rest_gateway_creates_reports_and_kills_drivers() {
    let t = Topology::start(EXE.as_ref(), 141, "spark.master.rest.enabled true\n");
    let alive = t.wait_alive_with(2, Duration::from_secs(30));
    let ip = t.master_ip(alive);
    let marker = t.dir().join("rest-driver-ran");
    let script = format!("echo $FOO > {}; exec sleep 60", marker.display());
    let (code, created) = rest(
        &ip,
        "POST",
        "/v1/submissions/create",
        &create_request(&script),
    );
    assert_eq!(code, 200, "{created}");
    assert_eq!(created["action"], "CreateSubmissionResponse");
    assert_eq!(created["success"], true, "{created}");
    let id = created["submissionId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(id.starts_with("driver-"), "{created}");
    let status = format!("/v1/submissions/status/{id}");
    wait_until(
        "the driver RUNNING with FOO set",
        Duration::from_secs(20),
        || {
            let (_, s) = rest(&ip, "GET", &status, "");
            s["driverState"] == "RUNNING"
                && std::fs::read_to_string(&marker).is_ok_and(|m| m == "bar\n")
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    let (_, s) = rest(&ip, "GET", &status, "");
    let worker = s["workerHostPort"].as_str().unwrap_or_default();
    assert!(
        [t.worker_ip(1), t.worker_ip(2)]
            .map(|w| format!("{w}:8081"))
            .contains(&worker.to_string()),
        "{s}"
    );
    check_standbys(&t, alive, &id);
    check_hostile_requests(&ip);
    let masters = (1..=3)
        .map(|m| format!("{}:{REST}", t.master_ip(m)))
        .collect::<Vec<_>>()
        .join(",");
    let url = format!("spark://{masters}");
    let (code, out) = submit(&["--master", &url, "--status", &id]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Server responded with SubmissionStatusResponse:"),
        "{out}"
    );
    assert!(out.contains("\"driverState\" : \"RUNNING\""), "{out}");
    let (code, out) = submit(&["--master", &url, "--kill", &id]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("Kill request for {id} submitted")),
        "{out}"
    );
    let (_, s) = rest(&ip, "GET", &status, "");
    assert_eq!(s["driverState"], "KILLED", "{s}");
    let (code, out) = submit(&["--master", &url, "--kill", &id]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("has already finished or does not exist"),
        "{out}"
    );
    let (code, out) = submit(&[
        "--master",
        &format!("http://{ip}:{REST}"),
        "--status",
        "driver-0-9",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"success\" : false"), "{out}");
    spark_submit_through_the_gateway(&t, &ip);
}

/// STANDBY masters answer as Spark's do: HTTP 200, success false, and a message that starts
/// with Spark's prefix, so that clients go on to the next master.
fn check_standbys(t: &Topology, alive: usize, id: &str) {
    for m in (1..=3).filter(|m| *m != alive) {
        let ip = t.master_ip(m);
        let (code, c) = rest(
            &ip,
            "POST",
            "/v1/submissions/create",
            &create_request("true"),
        );
        assert_eq!((code, &c["success"]), (200, &json!(false)), "{c}");
        assert_eq!(
            c["message"],
            "Current state is not alive: STANDBY. Can only accept driver submissions in ALIVE state."
        );
        let (_, s) = rest(&ip, "GET", &format!("/v1/submissions/status/{id}"), "");
        assert_eq!(s["success"], false, "{s}");
        assert!(s["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Current state is not alive")));
        let (_, k) = rest(&ip, "POST", &format!("/v1/submissions/kill/{id}"), "");
        assert_eq!(
            k["message"],
            "Current state is not alive: STANDBY. Can only kill drivers in ALIVE state."
        );
    }
}

/// Bad JSON, wrong types, wrong versions, missing ids and oversized bodies get an
/// `ErrorResponse` with Spark's HTTP status, and the gateway keeps answering.
fn check_hostile_requests(ip: &str) {
    let cases: [(&str, &str, &str, u16); 6] = [
        ("POST", "/v1/submissions/create", "{\"action\":", 400),
        (
            "POST",
            "/v1/submissions/create",
            "{\"action\":\"CreateSubmissionRequest\",\"appArgs\":7}",
            400,
        ),
        (
            "POST",
            "/v1/submissions/create",
            "{\"action\":\"KillSubmissionResponse\"}",
            400,
        ),
        ("POST", "/v2/submissions/create", "{}", 468),
        ("POST", "/v1/submissions/kill/", "", 400),
        ("GET", "/v1/submissions/create", "", 405),
    ];
    for (method, target, body, status) in cases {
        let (code, e) = rest(ip, method, target, body);
        assert_eq!(
            (code, &e["action"]),
            (status, &json!("ErrorResponse")),
            "{target} {body}: {e}"
        );
    }
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    assert_eq!(rest(ip, "POST", "/v1/submissions/create", &deep).0, 400);
    // A body declared larger than the limit is refused before it is sent.
    let mut s = std::net::TcpStream::connect((ip, REST)).expect("the gateway accepts");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    let head = "POST /v1/submissions/create HTTP/1.0\r\nContent-Length: 1000000000\r\n\r\n";
    s.write_all(head.as_bytes()).expect("the head is sent");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.0 413"), "{answer}");
    let (code, s) = rest(ip, "GET", "/v1/submissions/status/driver-0-9", "");
    assert_eq!((code, &s["success"]), (200, &json!(false)), "{s}");
}

/// Where pyspark 3.5 keeps Spark.
fn spark_35_home() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, pyspark; print(os.path.dirname(pyspark.__file__))",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pyspark is missing: run ./scripts/test"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Where pyspark 4.0 keeps Spark (`./scripts/test` installs it there).
fn spark_4_home() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/ensemble-tests/pyspark-4.0.5/pyspark")
}

/// Runs Spark's `spark-submit` from `home` with `args`, its REST client logging at INFO (Spark
/// logs the answers there); returns (exit code, output).
fn spark_submit(home: &Path, conf: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(home.join("bin/spark-submit"))
        .args(args)
        .env("SPARK_HOME", home)
        .env("SPARK_CONF_DIR", conf)
        .env("SPARK_LOCAL_IP", "127.0.141.99")
        .output()
        .expect("spark-submit runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A jar whose class `Hello` prints its arguments, built with the JDK's javac and jar.
fn hello_jar(dir: &Path) -> PathBuf {
    let src = dir.join("Hello.java");
    std::fs::write(
        &src,
        "public class Hello { public static void main(String[] a) { \
         System.out.println(\"hello \" + String.join(\",\", a)); } }",
    )
    .expect("the source is written");
    let built = Command::new("javac").arg("-d").arg(dir).arg(&src).status();
    assert!(built.is_ok_and(|s| s.success()), "javac builds Hello");
    let jar = dir.join("hello.jar");
    let packed = Command::new("jar")
        .arg("cf")
        .arg(&jar)
        .args(["-C", &dir.display().to_string(), "Hello.class"])
        .status();
    assert!(packed.is_ok_and(|s| s.success()), "jar packs Hello");
    jar
}

/// Spark 3.5's spark-submit creates a driver from a jar and polls it to FINISHED; Spark 4.0's
/// asks a driver's status and kills it.
fn spark_submit_through_the_gateway(t: &Topology, ip: &str) {
    let conf = t.dir().join("spark-conf");
    std::fs::create_dir_all(&conf).expect("a conf dir");
    std::fs::write(
        conf.join("log4j2.properties"),
        "rootLogger.level = warn\nrootLogger.appenderRef.stdout.ref = console\n\
         appender.console.type = Console\nappender.console.name = console\n\
         appender.console.layout.type = PatternLayout\n\
         appender.console.layout.pattern = %p %c{1}: %m%n\n\
         logger.rest.name = org.apache.spark.deploy.rest\nlogger.rest.level = info\n",
    )
    .expect("a log4j2 config");
    let jar = hello_jar(t.dir());
    let master = format!("spark://{ip}:{REST}");
    let (code, out) = spark_submit(
        &spark_35_home(),
        &conf,
        &[
            "--master",
            &master,
            "--deploy-mode",
            "cluster",
            "--conf",
            "spark.master.rest.enabled=true",
            "--class",
            "Hello",
            "--driver-memory",
            "128m",
            &jar.display().to_string(),
            "x",
            "y",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Submission successfully created as driver-"),
        "{out}"
    );
    let (_, sleeping) = rest(
        ip,
        "POST",
        "/v1/submissions/create",
        &create_request("exec sleep 60"),
    );
    let id = sleeping["submissionId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let spark_4 = spark_4_home();
    let (code, out) = spark_submit(&spark_4, &conf, &["--master", &master, "--status", &id]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Server responded with SubmissionStatusResponse"),
        "{out}"
    );
    assert!(
        out.contains(&format!("\"submissionId\" : \"{id}\"")),
        "{out}"
    );
    let (code, out) = spark_submit(&spark_4, &conf, &["--master", &master, "--kill", &id]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("Kill request for {id} submitted")),
        "{out}"
    );
    wait_until("the jar's driver FINISHED", Duration::from_secs(20), || {
        let j = ensemble_tests::spark::json(ip, 8080).unwrap_or_default();
        j["completeddrivers"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["state"] == "FINISHED"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    let printed = std::fs::read_dir(t.dir())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("work-"))
        .flat_map(|w| {
            std::fs::read_dir(w.path())
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
        })
        .any(|d| {
            std::fs::read_to_string(d.path().join("stdout")).is_ok_and(|s| s == "hello x,y\n")
        });
    assert!(
        printed,
        "the jar's driver printed its arguments\n{}",
        t.logs()
    );
}
