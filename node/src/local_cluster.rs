//! Real server processes on loopback, for integration tests and benchmarks.
//!
//! Each cluster lives on its own loopback block `127.0.B.x` (server `i` on `127.0.B.i`), so
//! clusters never share ports; its files live in a temporary directory; every child process is
//! killed when the cluster is dropped, or when the thread that started it ends (a test process
//! killed mid-run leaves no servers behind). Clusters run one at a time in a process, so that tests
//! do not compete for the CPU.

use crate::four_letter;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Makes the child die with the thread that starts it (the test's), so that a test process
/// killed mid-run leaves no servers holding its ports.
pub fn die_with_parent(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook makes only async-signal-safe calls.
    unsafe {
        c.pre_exec(ensemble_actors::child::parent_death_signal(libc::SIGKILL));
    }
}

/// Which program the servers run.
#[derive(Clone, Debug)]
pub enum Program {
    /// `ensemble node --config F --id N`.
    Cli(PathBuf),
    /// `ensemble node --config F --id N --control-stdin`, which takes writes on stdin.
    Writer(PathBuf),
}

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// A cluster of server processes.
pub struct ProcessCluster {
    dir: tempfile::TempDir,
    config: PathBuf,
    block: u8,
    size: u64,
    program: Program,
    procs: BTreeMap<u64, Proc>,
    lines_tx: Sender<(u64, String)>,
    lines: Receiver<(u64, String)>,
    backlog: Vec<(u64, String)>,
    /// Per-server zoo.cfg files, when the cluster runs from Apache's format.
    zoo_cfgs: BTreeMap<u64, PathBuf>,
    /// Client addresses that differ from `127.0.<block>.<id>:2181`.
    clients: BTreeMap<u64, String>,
    /// The generated config up to its `[[servers]]` entries.
    head: String,
    /// Per-server configs that replace the shared one (see [`ProcessCluster::route_peers`]).
    own_configs: BTreeMap<u64, PathBuf>,
    _turn: MutexGuard<'static, ()>,
}

/// Quorum timing of a generated config.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Tick length in ms.
    pub tick_ms: u64,
    /// initLimit in ticks.
    pub init_limit: u32,
    /// syncLimit in ticks.
    pub sync_limit: u32,
}

impl Timing {
    /// Fast settings for tests on a small, busy machine: 200 ms ticks, and limits loose enough
    /// (2 s of silence) that a JVM starting beside the servers cannot get a follower dropped.
    pub const TEST: Timing = Timing {
        tick_ms: 200,
        init_limit: 20,
        sync_limit: 10,
    };
    /// ZooKeeper's sample settings: 2 s ticks, initLimit 10, syncLimit 5.
    pub const ZOOKEEPER_DEFAULT: Timing = Timing {
        tick_ms: 2000,
        init_limit: 10,
        sync_limit: 5,
    };
}

impl ProcessCluster {
    /// Writes the config of `size` servers on block `127.0.<block>.x` with test timing;
    /// starts nothing yet. `storage` is extra `[storage]` lines.
    pub fn new(size: u64, block: u8, program: Program, storage: &str) -> Self {
        Self::with_timing(size, block, program, storage, Timing::TEST)
    }

    /// Like [`ProcessCluster::new`], with the given timing.
    pub fn with_timing(size: u64, block: u8, program: Program, storage: &str, t: Timing) -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().expect("temporary directory");
        let head = format!(
            "[ensemble]\ntick_ms = {}\ninit_limit = {}\nsync_limit = {}\n\
             [election]\nfinalize_wait_ms = 100\nmax_notification_timeout_ms = 2000\n\
             [client]\nfour_letter_words = [\"*\"]\n[storage]\ndata_dir = \"{}\"\n{storage}\n",
            t.tick_ms,
            t.init_limit,
            t.sync_limit,
            dir.path().join("data").display()
        );
        let toml = head.clone() + &servers_toml(size, |i| format!("127.0.{block}.{i}"));
        let config = dir.path().join("ensemble.toml");
        std::fs::write(&config, toml).expect("write config");
        let (lines_tx, lines) = channel();
        ProcessCluster {
            dir,
            config,
            block,
            size,
            program,
            procs: BTreeMap::new(),
            lines_tx,
            lines,
            backlog: Vec::new(),
            zoo_cfgs: BTreeMap::new(),
            clients: BTreeMap::new(),
            head,
            own_configs: BTreeMap::new(),
            _turn: turn,
        }
    }

    /// Like [`ProcessCluster::new`], but every server starts from an Apache `zoo.cfg` with a
    /// `myid` file in its dataDir (`ensemble node --zoo-cfg`), as a drop-in migration would.
    pub fn with_zoo_cfg(size: u64, block: u8, exe: PathBuf) -> Self {
        Self::with_zoo_cfg_lines(size, block, exe, "")
    }

    /// Like [`ProcessCluster::with_zoo_cfg`], with `extra` lines appended to every zoo.cfg.
    pub fn with_zoo_cfg_lines(size: u64, block: u8, exe: PathBuf, extra: &str) -> Self {
        let t = Timing::TEST;
        let cfg = |i: u64, data: &Path| {
            let mut cfg = format!(
                "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\nclientPort=2181\n\
                 clientPortAddress=127.0.{block}.{i}\n4lw.commands.whitelist=*\nadmin.enableServer=false\n",
                t.tick_ms,
                t.init_limit,
                t.sync_limit,
                data.display()
            );
            for j in 1..=size {
                cfg.push_str(&format!(
                    "server.{j}=127.0.{block}.{j}:2888:3888;127.0.{block}.{j}:2181\n"
                ));
            }
            cfg.push_str(extra);
            cfg
        };
        Self::with_zoo_cfg_text(size, block, exe, cfg, |i| format!("127.0.{block}.{i}:2181"))
    }

    /// Servers started from zoo.cfg files of any layout: `cfg(i, dataDir)` writes server `i`'s
    /// zoo.cfg (its `dataDir/myid` is written here), and clients reach it at `client(i)`.
    pub fn with_zoo_cfg_text(
        size: u64,
        block: u8,
        exe: PathBuf,
        cfg: impl Fn(u64, &Path) -> String,
        client: impl Fn(u64) -> String,
    ) -> Self {
        let mut c = Self::new(size, block, Program::Cli(exe), "");
        for i in 1..=size {
            let data = c.dir.path().join(format!("zk-{i}"));
            std::fs::create_dir_all(&data).expect("create dataDir");
            std::fs::write(data.join("myid"), format!("{i}\n")).expect("write myid");
            let path = c.dir.path().join(format!("zoo-{i}.cfg"));
            std::fs::write(&path, cfg(i, &data)).expect("write zoo.cfg");
            c.zoo_cfgs.insert(i, path);
            c.clients.insert(i, client(i));
        }
        c
    }

    /// Servers started from existing zoo.cfg files (`files[i - 1]` for server `i`, whose
    /// dataDir and myid are already there, e.g. those of a stopped Apache ZooKeeper ensemble);
    /// clients reach server `i` at `client(i)`.
    pub fn with_zoo_cfg_files(
        block: u8,
        exe: PathBuf,
        files: &[PathBuf],
        client: impl Fn(u64) -> String,
    ) -> Self {
        let size = files.len() as u64;
        let mut c = Self::new(size, block, Program::Cli(exe), "");
        for (i, path) in (1..).zip(files) {
            c.zoo_cfgs.insert(i, path.clone());
            c.clients.insert(i, client(i));
        }
        c
    }

    /// Path of server `id`'s zoo.cfg, when the cluster runs from Apache's format.
    pub fn zoo_cfg_path(&self, id: u64) -> Option<&PathBuf> {
        self.zoo_cfgs.get(&id)
    }

    /// Path of the generated config.
    pub fn config_path(&self) -> &PathBuf {
        &self.config
    }

    /// Client address of server `id`.
    pub fn client_addr(&self, id: u64) -> String {
        self.clients
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("127.0.{}.{id}:2181", self.block))
    }

    /// Where server `id` logs (stderr, appended across restarts).
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("server-{id}.log"))
    }

    /// Server `id`'s log so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    /// Starts every server.
    pub fn start_all(&mut self) {
        for id in 1..=self.size {
            self.start(id);
        }
    }

    /// Starts server `id` (from its own config if [`ProcessCluster::route_peers`] wrote one).
    pub fn start(&mut self, id: u64) {
        let config = self.own_configs.get(&id).unwrap_or(&self.config).clone();
        self.start_with_config(id, &config);
    }

    /// Gives every server its own config, in which it still listens on its own address but
    /// finds server `to`'s peer port (2888) on host `dial(from, to)`: a proxy there carries the
    /// link. Peers authenticate by server id and the shared secret (the same file for every
    /// server), not by address, so only the route changes. Later starts use these configs.
    pub fn route_peers(&mut self, dial: impl Fn(u64, u64) -> String) {
        let block = self.block;
        for from in 1..=self.size {
            let host = |to: u64| {
                if to == from {
                    format!("127.0.{block}.{to}")
                } else {
                    dial(from, to)
                }
            };
            let path = self.dir.path().join(format!("ensemble-{from}.toml"));
            let text = self.head.clone() + &servers_toml(self.size, host);
            std::fs::write(&path, text).expect("write config");
            self.own_configs.insert(from, path);
        }
    }

    fn command(&self, id: u64, config: &std::path::Path) -> Command {
        let (exe, stdin_control) = match &self.program {
            Program::Cli(exe) => (exe, false),
            Program::Writer(exe) => (exe, true),
        };
        let mut c = Command::new(exe);
        match self.zoo_cfgs.get(&id) {
            Some(zoo) => c.arg("node").arg("--zoo-cfg").arg(zoo),
            None => c
                .arg("node")
                .arg("--config")
                .arg(config)
                .arg("--id")
                .arg(id.to_string()),
        };
        if stdin_control {
            c.arg("--control-stdin");
        }
        die_with_parent(&mut c);
        c
    }

    /// Starts server `id` from another config file (to test misconfigurations).
    pub fn start_with_config(&mut self, id: u64, config: &std::path::Path) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("open log");
        let mut cmd = self.command(id, config);
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn server");
        let tx = self.lines_tx.clone();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((id, line)).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        self.procs.insert(id, Proc { child, stdin });
    }

    /// `kill -9` of server `id`.
    pub fn kill9(&mut self, id: u64) {
        if let Some(mut p) = self.procs.remove(&id) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// SIGSTOP (`pause`) or SIGCONT of server `id`: a stopped server keeps its sockets open
    /// but answers nothing, as a long GC pause or a frozen VM would. Whether it worked.
    pub fn set_paused(&self, id: u64, pause: bool) -> bool {
        let Some(pid) = self.pid(id) else {
            return false;
        };
        let signal = if pause { "-STOP" } else { "-CONT" };
        Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The OS process id of server `id`.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.procs.get(&id).map(|p| p.child.id())
    }

    /// Resident memory of server `id` in KiB, from /proc.
    pub fn rss_kib(&self, id: u64) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(id)?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    /// Whether server `id`'s process is still running.
    pub fn is_running(&mut self, id: u64) -> bool {
        self.procs
            .get_mut(&id)
            .is_some_and(|p| matches!(p.child.try_wait(), Ok(None)))
    }

    /// Waits up to `timeout` for server `id` to exit by itself and returns its exit code
    /// (`None` if it still runs, was never started or died by a signal).
    pub fn wait_exit(&mut self, id: u64, timeout: Duration) -> Option<i32> {
        let mut status = None;
        let _ = wait_until("the server to exit", timeout, || {
            status = self
                .procs
                .get_mut(&id)
                .and_then(|p| p.child.try_wait().ok().flatten());
            status.is_some()
        });
        status.and_then(|s| s.code())
    }

    /// Server `id`'s own data directory (dataDir and dataLogDir of a generated config).
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join("data").join(format!("server-{id}"))
    }

    /// The `Mode:` server `id` reports (`leader`, `follower`, `observer`, `not serving`,
    /// `unreachable ...`).
    pub fn mode(&self, id: u64) -> String {
        four_letter::mode(&self.client_addr(id), Duration::from_millis(500))
    }

    /// The server whose mode is `leader`, if exactly one says so.
    pub fn leader(&self) -> Option<u64> {
        let leaders: Vec<u64> = (1..=self.size)
            .filter(|i| self.mode(*i) == "leader")
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Waits until every server serves: one leader and the rest followers or observers (or a
    /// single standalone server).
    pub fn wait_serving(&self, timeout: Duration) -> Result<(), String> {
        wait_until("every server to serve", timeout, || {
            let modes: Vec<String> = (1..=self.size).map(|i| self.mode(i)).collect();
            let count = |m: &str| modes.iter().filter(|x| *x == m).count() as u64;
            (count("leader") == 1 && count("follower") + count("observer") == self.size - 1)
                || (self.size == 1 && count("standalone") == 1)
        })
    }

    /// Sends a command line to a writer server.
    pub fn send(&mut self, id: u64, line: &str) {
        if let Some(stdin) = self.procs.get_mut(&id).and_then(|p| p.stdin.as_mut()) {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// Waits for a line from server `id` that satisfies `pred`; other lines are kept.
    pub fn expect_line(
        &mut self,
        id: u64,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        if let Some(i) = self
            .backlog
            .iter()
            .position(|(from, l)| *from == id && pred(l))
        {
            return Some(self.backlog.remove(i).1);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((from, l)) if from == id && pred(&l) => return Some(l),
                Ok(other) => self.backlog.push(other),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// The next line from any server, waiting up to `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<(u64, String)> {
        if !self.backlog.is_empty() {
            return Some(self.backlog.remove(0));
        }
        self.lines.recv_timeout(timeout).ok()
    }

    /// Sends `line` and waits for the answer that starts with `answer_prefix`.
    pub fn ask(&mut self, id: u64, line: &str, answer_prefix: &str) -> Option<String> {
        self.send(id, line);
        self.expect_line(id, Duration::from_secs(10), |l| {
            l.starts_with(answer_prefix)
        })
    }

    /// Lines received from server `id` so far that satisfy `pred`, removed from the backlog.
    pub fn drain_lines(&mut self, id: u64, pred: impl Fn(&str) -> bool) -> Vec<String> {
        while let Ok(l) = self.lines.try_recv() {
            self.backlog.push(l);
        }
        let (hit, keep): (Vec<_>, Vec<_>) = self
            .backlog
            .drain(..)
            .partition(|(from, l)| *from == id && pred(l));
        self.backlog = keep;
        hit.into_iter().map(|(_, l)| l).collect()
    }

    /// A file to hand to tests (e.g. a zoo.cfg) inside the cluster's directory.
    pub fn file(&self, name: &str) -> (PathBuf, File) {
        let path = self.dir.path().join(name);
        let f = File::create(&path).expect("create file");
        (path, f)
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.procs.keys().copied().collect();
        for id in ids {
            self.kill9(id);
        }
    }
}

/// `[[servers]]` entries for servers `1..=size`, server `i` on `host(i)`.
fn servers_toml(size: u64, host: impl Fn(u64) -> String) -> String {
    (1..=size)
        .map(|i| {
            format!(
                "[[servers]]\nid = {i}\nhost = \"{}\"\npeer_port = 2888\nclient_port = 2181\n",
                host(i)
            )
        })
        .collect()
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; the error names `what`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("timed out after {timeout:?} waiting for {what}"))
}
