//! ensemble's own Spark-style masters and workers as real processes on loopback, through a real
//! 3-server ensemble: the seed lab's scenarios (TEST 1: one ALIVE master, the others STANDBY,
//! every worker registered with it; TEST 2: `kill -9` of the ALIVE master) and the ensemble's
//! leader dying under them.

use ensemble_node::local_cluster::wait_until;
use ensemble_tests::spark::{get, json, status, Topology};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");

/// Seed TEST 1: exactly one master is ALIVE, the others STANDBY, and every worker registers
/// with the ALIVE one.
#[test]
fn seed_test_1_one_alive_master_and_every_worker_registered_with_it() {
    let t = Topology::start(EXE.as_ref(), 43, "");
    let alive = t.wait_alive_with(2, Duration::from_secs(30));
    let statuses = t.statuses();
    let standby = statuses.iter().filter(|(_, s)| s == "STANDBY").count();
    assert_eq!(standby, 2, "{statuses:?}");
    let url = format!("spark://{}:7077", t.master_ip(alive));
    // The master lists a worker as it registers and answers it once its record is stored.
    wait_until(
        "both workers told they are registered",
        Duration::from_secs(10),
        || {
            (1..=2).all(|w| {
                json(&t.worker_ip(w), 8081).is_some_and(|j| j["masterurl"] == url.as_str())
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    let j = json(&t.master_ip(alive), 8080).unwrap();
    assert_eq!(
        (j["cores"].clone(), j["memory"].clone()),
        (4.into(), 1024.into())
    );
}

/// Seed TEST 2: `kill -9` of the ALIVE master. Another goes RECOVERING, then ALIVE; the live
/// worker re-registers; a worker killed just before goes UNKNOWN, then DEAD.
#[test]
fn seed_test_2_the_alive_master_killed_another_recovers_the_workers() {
    let mut t = Topology::start(
        EXE.as_ref(),
        44,
        "spark.worker.timeout 20\nspark.deploy.recoveryTimeout 3s\n",
    );
    let old = t.wait_alive_with(2, Duration::from_secs(30));
    t.wait_records("worker_", 2, Duration::from_secs(10));
    t.workers[1] = None;
    t.masters[old - 1] = None;
    let killed = Instant::now();
    let mut seen_recovering = false;
    let mut new = 0;
    wait_until("a new master ALIVE", Duration::from_secs(30), || {
        for m in (1..=3).filter(|m| *m != old) {
            // Status and workers from one snapshot: recovery may end between two requests.
            let Some(j) = json(&t.master_ip(m), 8080) else {
                continue;
            };
            if j["status"] == "RECOVERING" {
                seen_recovering = true;
                let states: Vec<&str> = j["workers"]
                    .as_array()
                    .map(|ws| ws.iter().filter_map(|w| w["state"].as_str()).collect())
                    .unwrap_or_default();
                assert!(
                    !states.contains(&"DEAD"),
                    "no worker is DEAD during recovery: {j}"
                );
            }
            if j["status"] == "ALIVE" {
                new = m;
            }
        }
        new != 0
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    let took = killed.elapsed();
    assert!(seen_recovering, "the new master went through RECOVERING");
    let j = json(&t.master_ip(new), 8080).unwrap();
    let state_of = |host: String| {
        j["workers"]
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["host"] == host.as_str()))
            .map(|w| w["state"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(state_of(t.worker_ip(1)).as_deref(), Some("ALIVE"));
    assert_eq!(
        state_of(t.worker_ip(2)).as_deref(),
        Some("DEAD"),
        "the worker killed before the failover never answered: {j}"
    );
    assert_eq!(j["aliveworkers"], 1);
    assert_eq!(t.alive(), vec![new], "exactly one ALIVE master");
    println!("failover with a silent worker (3 s recovery timeout): {took:?}");
}

/// The ensemble's leader dies under the masters (the seed report saw this take the ALIVE
/// master down): sessions move to the surviving servers, and there is never more than one
/// ALIVE master; exactly one remains or returns.
#[test]
fn the_ensemble_leader_killed_leaves_exactly_one_alive_master() {
    let mut t = Topology::start(EXE.as_ref(), 45, "");
    t.wait_alive_with(2, Duration::from_secs(30));
    let leader = t.ensemble.leader().expect("an ensemble leader");
    t.ensemble.kill9(leader);
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let alive = t.alive();
        assert!(
            alive.len() <= 1,
            "two ALIVE masters: {alive:?}\n{}",
            t.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t.wait_alive_with(2, Duration::from_secs(30));
}

/// Runs `ensemble submit` with `args`; returns (exit code, stdout + stderr).
fn submit(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(EXE)
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

/// An application running across a master failover: its executors keep running, the new
/// master learns them from the workers, and the application ends FINISHED.
#[test]
fn running_work_survives_a_master_failover_and_finishes() {
    let mut t = Topology::start(EXE.as_ref(), 48, "");
    let old = t.wait_alive_with(2, Duration::from_secs(30));
    let masters: Vec<String> = (1..=3)
        .map(|m| format!("{}:7077", t.master_ip(m)))
        .collect();
    let url = format!("spark://{}", masters.join(","));
    let marker = t.dir().join("done-");
    let script = format!("sleep 4; touch {}$EXECUTOR_ID", marker.display());
    let mut driver = std::process::Command::new(EXE)
        .args(["submit", "--master", &url, "--total-executor-cores", "2"])
        .args([
            "--executor-memory",
            "256m",
            "--name",
            "across-failover",
            "--",
        ])
        .args(["sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ensemble submit runs");
    wait_until("both executors running", Duration::from_secs(20), || {
        json(&t.master_ip(old), 8080).is_some_and(|j| j["coresused"] == 2)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    t.wait_records("worker_", 2, Duration::from_secs(10));
    t.wait_records("app_", 1, Duration::from_secs(10));
    t.masters[old - 1] = None;
    let new = t.wait_alive_with(2, Duration::from_secs(20));
    let status = driver.wait().expect("the driver ends");
    let mut out = String::new();
    if let Some(mut o) = driver.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    assert!(status.success(), "{out}\n{}", t.logs());
    assert!(out.contains("Master changed to"), "{out}");
    assert!(out.contains("FINISHED"), "{out}");
    for e in 0..2 {
        assert!(
            std::path::Path::new(&format!("{}{e}", marker.display())).exists(),
            "executor {e} ran to its end"
        );
    }
    let j = json(&t.master_ip(new), 8080).unwrap();
    assert_eq!(j["completedapps"][0]["state"], "FINISHED", "{j}");
    assert_eq!(
        j["completedapps"].as_array().map(Vec::len),
        Some(1),
        "registered once: {j}"
    );
    assert_eq!(j["coresused"], 0);
}

/// Bad submissions get a clear error: an unreachable master, zero cores, more memory than any
/// worker has.
#[test]
fn bad_submissions_get_clear_errors() {
    let t = Topology::start(EXE.as_ref(), 49, "");
    let alive = t.wait_alive_with(2, Duration::from_secs(30));
    let url = format!("spark://{}:7077", t.master_ip(alive));
    let (code, out) = submit(&["--master", "spark://127.0.49.99:7077", "--", "true"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cannot reach any master at spark://127.0.49.99:7077"),
        "{out}"
    );
    let (code, out) = submit(&["--master", &url, "--executor-cores", "0", "--", "true"]);
    assert_eq!(code, 2);
    assert!(out.contains("--executor-cores must be at least 1"), "{out}");
    let (code, out) = submit(&["--master", &url, "--executor-memory", "8g", "--", "true"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("executor memory 8192 MiB is larger than any worker's (512 MiB)"),
        "{out}"
    );
    let (code, out) = submit(&["--master", "127.0.49.11:7077", "--", "true"]);
    assert_eq!(code, 2);
    assert!(out.contains("must start with spark://"), "{out}");
}

/// Misconfiguration: two masters on one ensemble but different dirs both lead (each is right
/// in its own dir); a worker given both is accepted by both and reports it, staying with one.
#[test]
fn masters_in_different_dirs_are_reported_by_their_workers() {
    use ensemble_node::local_cluster::{ProcessCluster, Program};
    use ensemble_tests::spark::Proc;
    let mut ensemble = ProcessCluster::new(3, 50, Program::Cli(EXE.into()), "");
    ensemble.start_all();
    ensemble.wait_serving(Duration::from_secs(20)).unwrap();
    let servers: Vec<String> = (1..=3).map(|i| ensemble.client_addr(i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Vec::new();
    for (m, zk_dir) in [(1, "/spark-a"), (2, "/spark-b")] {
        let props = dir.path().join(format!("m{m}.conf"));
        std::fs::write(
            &props,
            format!(
                "spark.deploy.recoveryMode ZOOKEEPER\nspark.deploy.zookeeper.url {}\n\
                 spark.deploy.zookeeper.dir {zk_dir}\n",
                servers.join(",")
            ),
        )
        .unwrap();
        let host = format!("127.0.50.1{m}");
        let args: Vec<String> = [
            "master",
            "--host",
            &host,
            "--port",
            "7077",
            "--webui-port",
            "8080",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--properties-file".to_string(), props.display().to_string()])
        .collect();
        procs.push(Proc::start(
            EXE.as_ref(),
            dir.path(),
            &format!("master-{m}"),
            &args,
        ));
    }
    wait_until(
        "both masters ALIVE, each in its dir",
        Duration::from_secs(30),
        || status("127.0.50.11") == "ALIVE" && status("127.0.50.12") == "ALIVE",
    )
    .unwrap();
    let work = dir.path().join("work");
    let args: Vec<String> = [
        "worker",
        "spark://127.0.50.11:7077,127.0.50.12:7077",
        "--host",
        "127.0.50.21",
        "--webui-port",
        "8081",
        "--work-dir",
        work.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let worker = Proc::start(EXE.as_ref(), dir.path(), "worker", &args);
    wait_until(
        "the worker to report the conflict",
        Duration::from_secs(20),
        || {
            json("127.0.50.21", 8081)
                .is_some_and(|j| j["conflicts"].as_array().is_some_and(|c| !c.is_empty()))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", worker.log()));
    let log = worker.log();
    assert!(log.contains("two masters accepted this worker"), "{log}");
    assert!(
        log.contains("/spark-a") && log.contains("/spark-b"),
        "{log}"
    );
}

/// Renders a page in headless Chromium (Debian's package, which `./scripts/test` installs);
/// returns its DOM after scripts ran, and leaves a screenshot in `shot`.
fn chromium(url: &str, profile: &std::path::Path, shot: &std::path::Path) -> String {
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let run = |extra: &[String]| {
        std::process::Command::new("chromium")
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .stderr(std::process::Stdio::null())
            .output()
            .expect("chromium runs (./scripts/test installs Debian's chromium)")
    };
    run(&[
        "--window-size=1100,700".into(),
        format!("--screenshot={}", shot.display()),
    ]);
    String::from_utf8_lossy(&run(&["--dump-dom".into()]).stdout).to_string()
}

/// The master and worker pages, as a browser shows them, with an application's executor
/// running: the worker's figures, its executors table, the executor's log and the application
/// page; a log path out of the work dir is refused.
#[test]
fn the_web_ui_renders_in_headless_chromium() {
    let t = Topology::start(EXE.as_ref(), 125, "");
    let alive = t.wait_alive_with(2, Duration::from_secs(30));
    check_idle_pages(&t, alive);
    let url = format!("spark://{}:7077", t.master_ip(alive));
    let script = "echo from-the-executor; sleep 30";
    let mut driver = std::process::Command::new(EXE)
        .args(["submit", "--master", &url, "--total-executor-cores", "1"])
        .args(["--executor-memory", "128m", "--name", "pages", "--"])
        .args(["sh", "-c", script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ensemble submit runs");
    let mut worker = 0;
    wait_until("the executor running", Duration::from_secs(20), || {
        worker = (1..=2)
            .find(|w| json(&t.worker_ip(*w), 8081).is_some_and(|j| j["coresused"] == 1))
            .unwrap_or(0);
        worker != 0
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    let checked = check_pages(&t, alive, worker);
    let _ = driver.kill();
    let _ = driver.wait();
    checked.unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
}

/// The pages of the test above, while one executor of one core and 128 MiB runs on `worker`.
fn check_pages(t: &Topology, alive: usize, worker: usize) -> Result<(), String> {
    let profile = t.dir().join("chromium");
    let shot = t.dir().join("worker.png");
    let w = t.worker_ip(worker);
    let j = json(&w, 8081).ok_or("the worker's /json")?;
    let app = j["executors"][0]["appid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let dom = chromium(&format!("http://{w}:8081/"), &profile, &shot);
    for part in [
        "<strong>Cores:</strong> 2 (1 Used)",
        "<strong>Memory:</strong> 512 MiB (128 MiB Used)",
        "Running Executors (1)",
        "<td>0</td><td>1</td><td>RUNNING</td><td>128 MiB</td>",
    ] {
        if !dom.contains(part) {
            return Err(format!("{part} missing from\n{dom}"));
        }
    }
    let log = format!("/logPage/?appId={app}&executorId=0&logType=stdout");
    let found = wait_until("the executor's stdout", Duration::from_secs(10), || {
        get(&w, 8081, &log).is_some_and(|(code, b)| code == 200 && b.contains("from-the-executor"))
    });
    found.map_err(|e| format!("{e}: {:?}", get(&w, 8081, &log)))?;
    for hostile in [
        "/logPage/?appId=..&executorId=0&logType=stdout",
        "/logPage/?appId=%2E%2E%2F%2E%2E&executorId=0&logType=stdout",
        &format!("/log?appId={app}&executorId=0&logType=..%2F..%2Fspark.conf"),
    ] {
        let answer = get(&w, 8081, hostile);
        if answer.as_ref().map(|a| a.0) != Some(400) {
            return Err(format!("{hostile} was not refused: {answer:?}"));
        }
    }
    let page = get(&t.master_ip(alive), 8080, &format!("/app/?appId={app}"));
    let expected =
        format!("http://{w}:8081/logPage/?appId={app}&amp;executorId=0&amp;logType=stderr");
    match page {
        Some((200, body)) if body.contains("Executor Summary (1)") && body.contains(&expected) => {
            Ok(())
        }
        other => Err(format!("the application page: {other:?}")),
    }
}

/// The master and worker pages, as a browser shows them, with no work.
fn check_idle_pages(t: &Topology, alive: usize) {
    let profile = t.dir().join("chromium");
    let shot = t.dir().join("master.png");
    let master = format!("http://{}:8080/", t.master_ip(alive));
    let dom = chromium(&master, &profile, &shot);
    for part in [
        format!("Spark Master at spark://{}:7077", t.master_ip(alive)),
        "<strong>Alive Workers:</strong> 2".into(),
        "<strong>Cores in use:</strong> 4 Total, 0 Used".into(),
        "<strong>Status:</strong> ALIVE".into(),
        "Workers (2)".into(),
    ] {
        assert!(dom.contains(&part), "{part} missing from\n{dom}");
    }
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
        "a screenshot was taken"
    );
    // Both standbys: the one right behind the leader in the latch order and the one further
    // down (they learn of the leader differently).
    let ip = t.master_ip(alive);
    let link = format!("<a href=\"http://{ip}:8080/\">spark://{ip}:7077</a>");
    for standby in (1..=3).filter(|m| *m != alive) {
        let dom = chromium(
            &format!("http://{}:8080/", t.master_ip(standby)),
            &profile,
            &shot,
        );
        assert!(dom.contains("<strong>Status:</strong> STANDBY"), "{dom}");
        assert!(
            dom.contains(&link),
            "standby {standby} names and links the ALIVE master: {dom}"
        );
    }
    let dom = chromium(&format!("http://{}:8081/", t.worker_ip(1)), &profile, &shot);
    assert!(
        dom.contains(&format!(
            "Master URL:</strong> spark://{}:7077",
            t.master_ip(alive)
        )),
        "{dom}"
    );
}

/// Recovery mode FILESYSTEM: a lone master killed and restarted on the same directory
/// recovers its worker from the records there.
#[test]
fn a_filesystem_master_restarted_recovers_its_workers_from_the_directory() {
    use ensemble_tests::spark::Proc;
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("fs.conf");
    std::fs::write(
        &props,
        format!(
            "spark.deploy.recoveryMode FILESYSTEM\nspark.deploy.recoveryDirectory {}\n",
            dir.path().join("recovery").display()
        ),
    )
    .unwrap();
    let master_args: Vec<String> = [
        "master",
        "--host",
        "127.0.52.11",
        "--port",
        "7077",
        "--webui-port",
        "8080",
        "--properties-file",
        props.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let master = Proc::start(EXE.as_ref(), dir.path(), "master", &master_args);
    let work = dir.path().join("work");
    let worker_args: Vec<String> = [
        "worker",
        "spark://127.0.52.11:7077",
        "--host",
        "127.0.52.21",
        "--webui-port",
        "8081",
        "--work-dir",
        work.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let worker = Proc::start(EXE.as_ref(), dir.path(), "worker", &worker_args);
    let alive_with_worker = || {
        json("127.0.52.11", 8080).is_some_and(|j| j["status"] == "ALIVE" && j["aliveworkers"] == 1)
    };
    wait_until(
        "the worker registered",
        Duration::from_secs(20),
        alive_with_worker,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", master.log()));
    // Records are written after the reply, off the actor thread: wait for the file.
    let recovery = dir.path().join("recovery");
    wait_until(
        "the worker's record on disk",
        Duration::from_secs(20),
        || {
            std::fs::read_dir(&recovery).is_ok_and(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .any(|n| n.starts_with("worker_") && !n.ends_with(".tmp"))
            })
        },
    )
    .unwrap();
    drop(master);
    let master = Proc::start(EXE.as_ref(), dir.path(), "master-again", &master_args);
    wait_until(
        "the restarted master back with its worker",
        Duration::from_secs(20),
        alive_with_worker,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}\nworker:\n{}", master.log(), worker.log()));
    assert!(
        master
            .log()
            .contains("read 1 worker, 0 application and 0 driver records; epoch 2"),
        "{}",
        master.log()
    );
    assert_eq!(status("127.0.52.11"), "ALIVE");
}

/// Cluster deploy mode: a worker runs the driver; with `--supervise`, a driver that fails is
/// relaunched, and ends FINISHED.
#[test]
fn a_supervised_cluster_mode_driver_is_relaunched_until_it_finishes() {
    let t = Topology::start(EXE.as_ref(), 53, "");
    let alive = t.wait_alive_with(2, Duration::from_secs(30));
    let url = format!(
        "spark://{}",
        (1..=3)
            .map(|m| format!("{}:7077", t.master_ip(m)))
            .collect::<Vec<_>>()
            .join(",")
    );
    let marker = t.dir().join("first-run-failed");
    let script = format!(
        "if [ -e {m} ]; then echo second; exit 0; else touch {m}; exit 3; fi",
        m = marker.display()
    );
    let (code, out) = submit(&[
        "--master",
        &url,
        "--deploy-mode",
        "cluster",
        "--supervise",
        "--driver-memory",
        "128m",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Driver successfully submitted as driver-"),
        "{out}"
    );
    wait_until("the driver FINISHED", Duration::from_secs(20), || {
        json(&t.master_ip(alive), 8080)
            .is_some_and(|j| j["completeddrivers"][0]["state"] == "FINISHED")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    assert!(
        marker.exists(),
        "the first run failed, and the relaunch finished"
    );
    let j = json(&t.master_ip(alive), 8080).unwrap();
    assert_eq!(j["coresused"], 0, "{j}");
    let (code, out) = submit(&["--master", &url, "--supervise", "--", "true"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("--supervise needs --deploy-mode cluster"),
        "{out}"
    );
}

/// Masters started before the ensemble wait for it (SPARK-25101) and elect once it is up.
#[test]
fn masters_started_before_the_ensemble_elect_once_it_is_up() {
    use ensemble_node::local_cluster::{ProcessCluster, Program};
    use ensemble_tests::spark::Proc;
    let mut ensemble = ProcessCluster::new(3, 54, Program::Cli(EXE.into()), "");
    let servers: Vec<String> = (1..=3).map(|i| ensemble.client_addr(i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("spark.conf");
    std::fs::write(
        &props,
        format!(
            "spark.deploy.recoveryMode ZOOKEEPER\nspark.deploy.zookeeper.url {}\n",
            servers.join(",")
        ),
    )
    .unwrap();
    let masters: Vec<Proc> = (1..=2)
        .map(|m| {
            let host = format!("127.0.54.1{m}");
            let args: Vec<String> = [
                "master",
                "--host",
                &host,
                "--port",
                "7077",
                "--webui-port",
                "8080",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(["--properties-file".into(), props.display().to_string()])
            .collect();
            Proc::start(EXE.as_ref(), dir.path(), &format!("master-{m}"), &args)
        })
        .collect();
    wait_until(
        "both masters up and STANDBY",
        Duration::from_secs(20),
        || status("127.0.54.11") == "STANDBY" && status("127.0.54.12") == "STANDBY",
    )
    .unwrap();
    ensemble.start_all();
    ensemble.wait_serving(Duration::from_secs(20)).unwrap();
    wait_until("one master ALIVE", Duration::from_secs(30), || {
        let s = [status("127.0.54.11"), status("127.0.54.12")];
        s.iter().filter(|s| *s == "ALIVE").count() == 1 && s.contains(&"STANDBY".to_string())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", masters[0].log(), masters[1].log()));
}

/// A frozen ALIVE master loses its session: another takes over, and the old one, thawed,
/// steps down to STANDBY and keeps running (Spark's master exits instead); the workers follow
/// the newer epoch.
#[test]
fn a_master_that_lost_its_session_steps_down_to_standby() {
    let t = Topology::start(EXE.as_ref(), 55, "");
    let old = t.wait_alive_with(2, Duration::from_secs(30));
    t.wait_records("worker_", 2, Duration::from_secs(10));
    let signal = |sig: &str| t.masters[old - 1].as_ref().expect("running").signal(sig);
    signal("-STOP");
    let mut new = 0;
    wait_until("another master ALIVE", Duration::from_secs(30), || {
        new = t
            .statuses()
            .into_iter()
            .find(|(m, s)| *m != old && s == "ALIVE")
            .map_or(0, |(m, _)| m);
        new != 0
    })
    .unwrap_or_else(|e| {
        signal("-CONT");
        panic!("{e}\n{}", t.logs())
    });
    signal("-CONT");
    wait_until(
        "the old master back as STANDBY",
        Duration::from_secs(30),
        || status(&t.master_ip(old)) == "STANDBY",
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    assert_eq!(t.alive(), vec![new]);
    let url = format!("spark://{}:7077", t.master_ip(new));
    wait_until(
        "the workers on the new master",
        Duration::from_secs(20),
        || {
            (1..=2).all(|w| {
                json(&t.worker_ip(w), 8081).is_some_and(|j| j["masterurl"] == url.as_str())
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
}
