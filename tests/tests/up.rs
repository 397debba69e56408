//! `ensemble up` as an operator runs it: the port pre-check, children that die with it, its
//! own output (prefixed logs, transitions), its cleanup, and `ensemble status` finding it.
//! Loopback block 127.0.120.x; every process of a test on an address of its own.

use ensemble_node::local_cluster::wait_until;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLI: &str = env!("CARGO_BIN_EXE_ensemble-cli");

/// Ports of the one server, master and worker of a test's config.
const CLIENT: u16 = 21201;
const MASTER: u16 = 27201;
const MASTER_UI: u16 = 28201;
const WORKER_UI: u16 = 28291;

/// A config of one server, one master and one worker on `host`, its data under `dir/data`.
fn write_config(dir: &Path, host: &str) -> PathBuf {
    let text = format!(
        "[ensemble]\ntick_ms = 200\n\n[storage]\ndata_dir = \"{data}\"\nfsync = false\n\n\
         [spark]\nsession_timeout = \"2s\"\n\n\
         [[masters]]\nhost = \"{host}\"\nport = {MASTER}\nwebui_port = {MASTER_UI}\n\n\
         [[workers]]\nhost = \"{host}\"\ncores = 1\nmemory = \"256m\"\nwebui_port = {WORKER_UI}\n\n\
         [[servers]]\nid = 1\nhost = \"{host}\"\npeer_port = 22201\nclient_port = {CLIENT}\n",
        data = dir.join("data").display()
    );
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `ensemble up` with its stdout and stderr lines collected.
struct Up {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

impl Up {
    fn start(config: &Path, runtime: &Path) -> Up {
        Up::start_with(config, runtime, &[])
    }

    /// `ensemble up --config <config> <extra>` with its state under `runtime`.
    fn start_with(config: &Path, runtime: &Path, extra: &[&str]) -> Up {
        let mut child = Command::new(CLI)
            .args(["up", "--config"])
            .arg(config)
            .args(extra)
            .env("XDG_RUNTIME_DIR", runtime)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Up { child, out, err }
    }

    fn wait_stdout(&self, what: &str, timeout: Duration) {
        let found = wait_until(what, timeout, || {
            self.out.lock().unwrap().iter().any(|l| l.contains(what))
        });
        assert!(
            found.is_ok(),
            "{found:?}; stdout: {:#?}",
            self.out.lock().unwrap()
        );
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            l.lock().unwrap().push(line);
        }
    });
    lines
}

/// (pid, parent pid, state) of every process.
fn processes() -> Vec<(u32, u32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after its last ')'.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut f = rest.split(' ');
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if let Some(ppid) = f.next().and_then(|p| p.parse().ok()) {
            out.push((pid, ppid, state));
        }
    }
    out
}

fn children_of(pid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, ppid, state)| *ppid == pid && *state != 'Z')
        .map(|(p, _, _)| p)
        .collect()
}

/// Whether `pid` still runs (a zombie no longer does).
fn running(pid: u32) -> bool {
    processes().iter().any(|(p, _, s)| *p == pid && *s != 'Z')
}

/// Every live process whose command line (arguments joined by spaces) holds `needle`.
fn processes_naming(needle: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(p, _, s)| {
            *s != 'Z'
                && std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
        })
        .map(|(p, _, _)| p)
        .collect()
}

/// Runs `cmd` to its end, which must come within 20 s.
fn exit_within(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_until("it to exit", Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if exited.is_err() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    exited.unwrap();
    out
}

#[test]
fn a_taken_port_stops_up_with_one_line_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let host = "127.0.120.1";
    let config = write_config(dir.path(), host);
    let _taken = std::net::TcpListener::bind((host, MASTER_UI)).unwrap();
    let out = exit_within(
        Command::new(CLI)
            .args(["up", "--config"])
            .arg(&config)
            .env("XDG_RUNTIME_DIR", dir.path().join("run")),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(&format!("{host}:{MASTER_UI}"))
            && lines[0].contains(&format!("web UI port of master:{MASTER}")),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(processes_naming(&config.display().to_string()).is_empty());
    assert!(!dir.path().join("data").join("up").exists());
}

#[test]
fn up_reports_in_its_own_output_is_found_by_status_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    let config = write_config(dir.path(), "127.0.120.2");
    let mut up = Up::start(&config, &runtime);
    up.wait_stdout("ensemble is up", Duration::from_secs(60));
    let err = up.err.lock().unwrap().clone();
    for name in [
        "server.1",
        &format!("master:{MASTER}"),
        &format!("worker:{WORKER_UI}"),
    ] {
        assert!(
            err.iter().any(|l| l.starts_with(name)),
            "no {name} line in {err:#?}"
        );
    }
    let status = Command::new(CLI)
        .arg("status")
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(text.contains("Mode: standalone"), "{text}");
    assert!(text.contains("ALIVE    workers 1"), "{text}");
    assert!(text.contains(&format!("worker:{WORKER_UI}")), "{text}");
    assert!(
        text.contains(&format!("master spark://127.0.120.2:{MASTER}")),
        "{text}"
    );
    // Nothing written beside the config.
    let mut beside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["cluster.toml", "data", "run"]);
    // A killed master is restarted, and up says so and how the ALIVE master changed.
    let master = processes_naming(&format!("--port {MASTER}"));
    let master: Vec<u32> = master
        .into_iter()
        .filter(|p| children_of(up.pid()).contains(p))
        .collect();
    assert_eq!(master.len(), 1);
    Command::new("kill")
        .args(["-9", &master[0].to_string()])
        .status()
        .unwrap();
    up.wait_stdout(&format!("master:{MASTER} exited"), Duration::from_secs(10));
    // The restarted master takes the killed one's session over at once (up gives the masters a
    // credential), so up's look once a second may never see the cluster without an ALIVE
    // master: wait for the new process to be ALIVE.
    wait_until(
        "the restarted master ALIVE",
        Duration::from_secs(30),
        || {
            let again = processes_naming(&format!("--port {MASTER}"));
            !again.contains(&master[0])
                && ensemble_tests::spark::json("127.0.120.2", MASTER_UI)
                    .is_some_and(|j| j["status"] == "ALIVE")
        },
    )
    .unwrap_or_else(|e| panic!("{e}; stdout: {:#?}", up.out.lock().unwrap()));
    let kids = children_of(up.pid());
    assert_eq!(kids.len(), 3, "{kids:?}");
    Command::new("kill")
        .arg(up.pid().to_string())
        .status()
        .unwrap();
    let mut code = None;
    wait_until("up to stop", Duration::from_secs(20), || {
        code = up.child.try_wait().unwrap();
        code.is_some()
    })
    .unwrap();
    assert_eq!(code.and_then(|c| c.code()), Some(0));
    assert!(kids.iter().all(|p| !running(*p)), "{kids:?}");
    assert_eq!(state_files(&runtime), Vec::<String>::new());
    let up_dir = dir.path().join("data").join("up");
    assert!(!up_dir.join("spark.conf").exists());
    let log = std::fs::read_to_string(up_dir.join("logs").join("server.1.log")).unwrap();
    assert!(!log.is_empty());
}

#[test]
fn kill_9_of_up_takes_its_children_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.120.3");
    let mut up = Up::start(&config, &dir.path().join("run"));
    up.wait_stdout("ensemble is up", Duration::from_secs(60));
    let kids = children_of(up.pid());
    assert_eq!(kids.len(), 3, "{kids:?}");
    up.child.kill().unwrap();
    up.child.wait().unwrap();
    let gone = wait_until("up's children to die", Duration::from_secs(10), || {
        kids.iter().all(|p| !running(*p))
    });
    assert!(gone.is_ok(), "{gone:?}: {kids:?}");
}

/// What a second `up` used to leave behind: a master or worker whose web UI port is taken
/// panicked ("there is no reactor running") instead of exiting with one line.
#[test]
fn a_master_or_worker_whose_web_ui_port_is_taken_exits_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let host = "127.0.120.4";
    let _taken = std::net::TcpListener::bind((host, MASTER_UI)).unwrap();
    let ui = MASTER_UI.to_string();
    let master_url = format!("spark://{host}:{MASTER}");
    let work = dir.path().join("work").display().to_string();
    let master = [
        "master",
        "--host",
        host,
        "--port",
        "27299",
        "--webui-port",
        &ui,
    ];
    let worker = [
        "worker",
        &master_url,
        "--host",
        host,
        "--webui-port",
        &ui,
        "--work-dir",
        &work,
    ];
    for args in [&master[..], &worker[..]] {
        let out = exit_within(Command::new(CLI).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "ensemble: cannot bind the web UI on {host}:{MASTER_UI}: Address already in use (os error 98)\n"
            ),
            "{args:?}"
        );
    }
}

/// The state files of running `up`s under `runtime`.
fn state_files(runtime: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(runtime.join("ensemble-up")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A config of one server only on `host`, its data under `dir/data`.
fn write_server_config(dir: &Path, host: &str) -> PathBuf {
    let text = format!(
        "[ensemble]\ntick_ms = 200\n\n[storage]\ndata_dir = \"{data}\"\nfsync = false\n\n\
         [[servers]]\nid = 1\nhost = \"{host}\"\npeer_port = 22201\nclient_port = {CLIENT}\n",
        data = dir.join("data").display()
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("server.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `ensemble status <args>` with the state under `runtime`: (exit code, stdout + stderr).
fn status(runtime: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(CLI)
        .arg("status")
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Sends SIGTERM to `up` and waits for its clean exit.
fn stop(up: &mut Up) {
    Command::new("kill")
        .arg(up.pid().to_string())
        .status()
        .unwrap();
    let mut code = None;
    wait_until("up to stop", Duration::from_secs(20), || {
        code = up.child.try_wait().unwrap();
        code.is_some()
    })
    .unwrap();
    assert_eq!(code.and_then(|c| c.code()), Some(0));
}

#[test]
fn two_ups_keep_their_own_state_and_status_lists_or_picks_them() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    let config_a = write_server_config(&dir.path().join("a"), "127.0.130.11");
    let config_b = write_server_config(&dir.path().join("b"), "127.0.130.12");
    // A stale file of an `up` killed with -9 (a pid that no longer runs).
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale = runtime
        .join("ensemble-up")
        .join(format!("{}.json", gone.id()));
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(
        &stale,
        format!(r#"{{"pid":{},"config":"/x","data_dir":"/y"}}"#, gone.id()),
    )
    .unwrap();

    let mut a = Up::start_with(&config_a, &runtime, &["--log-format", "json"]);
    let mut b = Up::start(&config_b, &runtime);
    a.wait_stdout("ensemble is up", Duration::from_secs(30));
    b.wait_stdout("ensemble is up", Duration::from_secs(30));
    // up's json: its children's lines relayed as JSON objects naming the process.
    let relayed: Vec<serde_json::Value> = a
        .err
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        relayed
            .iter()
            .any(|v| v["process"] == "server.1" && v["fields"]["message"].is_string()),
        "{relayed:?}"
    );

    let (code, text) = status(&runtime, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("2 `ensemble up`s are running"), "{text}");
    for (up, config) in [(&a, &config_a), (&b, &config_b)] {
        let data = config.parent().unwrap().join("data");
        let line = format!(
            "pid {:<8} config {}  data dir {}",
            up.pid(),
            config.display(),
            data.display()
        );
        assert!(text.contains(&line), "{line:?} not in {text}");
    }
    assert!(!stale.exists(), "the stale file is cleaned");
    let (code, text) = status(&runtime, &["--up", &a.pid().to_string()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("127.0.130.11:{CLIENT}")), "{text}");
    assert!(text.contains("Mode: standalone"), "{text}");
    let (code, text) = status(&runtime, &["--up", "1"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("no running `ensemble up` has pid 1"),
        "{text}"
    );

    // The first to stop removes its own file only.
    stop(&mut a);
    assert_eq!(state_files(&runtime), vec![format!("{}.json", b.pid())]);
    let (code, text) = status(&runtime, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("127.0.130.12:{CLIENT}")), "{text}");
    stop(&mut b);
    assert_eq!(state_files(&runtime), Vec::<String>::new());
    let (code, text) = status(&runtime, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no `ensemble up` is running"), "{text}");
}

#[test]
fn without_xdg_runtime_dir_the_state_is_in_a_private_temp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_server_config(dir.path(), "127.0.130.13");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = Command::new(CLI)
        .args(["up", "--config"])
        .arg(&config)
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = collect(child.stdout.take().unwrap());
    let mut up = Up {
        child,
        out,
        err: Arc::new(Mutex::new(Vec::new())),
    };
    up.wait_stdout("ensemble is up", Duration::from_secs(30));
    let private = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ensemble-")
        })
        .expect("a private dir under TMPDIR");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&private).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let file = private
        .join("ensemble-up")
        .join(format!("{}.json", up.pid()));
    assert!(file.exists(), "{file:?}");
    let status = Command::new(CLI)
        .arg("status")
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("Mode: standalone"), "{text}");
    stop(&mut up);
    assert!(!file.exists());
}
