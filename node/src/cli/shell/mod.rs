//! `ensemble shell`: a zkCli-style shell over the ZooKeeper protocol, interactive or one command.

/// Prints a line; a closed stdout (`| head`) ends the output quietly instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// Prints a line on stderr, where zkCli prints usage and errors.
macro_rules! complain {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod args;
mod commands;
mod editor;
mod output;
mod quota;
mod reconfig;
mod usage;

use commands::Failure;
use editor::SharedClient;
use ensemble_actors::tls::ClientConfig;
use ensemble_actors::zk_client::{WatchedEvent, ZkClient};
use ensemble_messages::zk::{EventType, KeeperState};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How a command line ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// It did what it was asked.
    Done,
    /// It failed (its error or usage is printed).
    Failed,
    /// The command does not exist.
    NotFound,
    /// `quit`.
    Quit,
}

/// Accepts zkCli's spelling `ensemble shell -server host:port` besides `--server`.
pub(super) fn zkcli_spelling(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.collect();
    if args.get(1).is_some_and(|a| a == "shell") && args.get(2).is_some_and(|a| a == "-server") {
        args[2] = "--server".into();
    }
    args
}

/// The shell's state: the session, the command history and whether watch events are printed.
struct Shell {
    servers: String,
    /// TLS on every connection (`--secure`).
    tls: Option<Arc<ClientConfig>>,
    client: Option<ZkClient>,
    shared: SharedClient,
    events: UnboundedSender<WatchedEvent>,
    print_watches: Arc<AtomicBool>,
    /// The keeper state the session last reported (SyncConnected, Disconnected, Expired).
    keeper_state: Arc<AtomicI32>,
    history: Vec<String>,
}

/// Runs one command (`command` non-empty), or the shell on stdin; returns the exit code.
pub(super) fn run(
    servers: &str,
    tls: Option<Arc<ClientConfig>>,
    command: Vec<String>,
) -> Result<i32, Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut shell = Shell::connect(servers, tls).await?;
        if !command.is_empty() {
            shell.history.push(command.join(" "));
            let code = match shell.dispatch(&command).await {
                Outcome::Done | Outcome::Quit => 0,
                Outcome::Failed => 1,
                Outcome::NotFound => 127,
            };
            shell.close().await;
            return Ok(code);
        }
        shell.interact().await;
        shell.close().await;
        Ok(0)
    })
}

fn event_name(t: EventType) -> &'static str {
    match t {
        EventType::NodeCreated => "NodeCreated",
        EventType::NodeDeleted => "NodeDeleted",
        EventType::NodeDataChanged => "NodeDataChanged",
        EventType::NodeChildrenChanged => "NodeChildrenChanged",
        EventType::DataWatchRemoved => "DataWatchRemoved",
        EventType::ChildWatchRemoved => "ChildWatchRemoved",
        EventType::PersistentWatchRemoved => "PersistentWatchRemoved",
        _ => "None",
    }
}

/// Prints node events as zkCli does while `printwatches` is on; notes connection state changes
/// (events of type None) in `keeper_state` for the prompt.
fn print_events(
    mut events: tokio::sync::mpsc::UnboundedReceiver<WatchedEvent>,
    on: Arc<AtomicBool>,
    keeper_state: Arc<AtomicI32>,
) {
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if e.event_type == EventType::None {
                keeper_state.store(e.state.code(), Ordering::Relaxed);
            } else if on.load(Ordering::Relaxed) {
                say!(
                    "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:{} path:{}",
                    event_name(e.event_type),
                    e.path
                );
            }
        }
    });
}

/// Opens a session on `servers` (host:port,...).
async fn open(
    servers: &str,
    tls: Option<Arc<ClientConfig>>,
    events: UnboundedSender<WatchedEvent>,
) -> Result<ZkClient, String> {
    let list: Vec<String> = servers
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    ZkClient::connect_with_tls(&list, Duration::from_secs(30), events, tls)
        .await
        .map_err(|e| e.to_string())
}

impl Shell {
    async fn connect(servers: &str, tls: Option<Arc<ClientConfig>>) -> Result<Shell, String> {
        let (events, received) = tokio::sync::mpsc::unbounded_channel();
        let print_watches = Arc::new(AtomicBool::new(true));
        let keeper_state = Arc::new(AtomicI32::new(KeeperState::SyncConnected.code()));
        print_events(received, print_watches.clone(), keeper_state.clone());
        let client = open(servers, tls.clone(), events.clone()).await?;
        Ok(Shell {
            servers: servers.to_string(),
            tls,
            shared: Arc::new(Mutex::new(Some(client.clone()))),
            client: Some(client),
            events,
            print_watches,
            keeper_state,
            history: Vec::new(),
        })
    }

    /// Reads and runs command lines until `quit` or the end of input.
    async fn interact(&mut self) {
        let terminal = std::io::stdin().is_terminal();
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let prompts = editor::spawn_reader(terminal, self.shared.clone(), lines_tx);
        loop {
            if prompts.send(self.prompt()).is_err() {
                break;
            }
            let Some(Some(line)) = lines.recv().await else {
                break;
            };
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                continue;
            }
            self.history.push(line.trim().to_string());
            if self.dispatch(&words).await == Outcome::Quit {
                break;
            }
        }
    }

    /// zkCli's prompt: `[zk: host:port(CONNECTED) 3] `, with the session's state.
    fn prompt(&self) -> String {
        let state = match (
            &self.client,
            KeeperState::from_wire(self.keeper_state.load(Ordering::Relaxed)),
        ) {
            (None, _) | (_, KeeperState::Expired) => "CLOSED",
            (_, KeeperState::Disconnected) => "CONNECTING",
            _ => "CONNECTED",
        };
        format!("[zk: {}({state}) {}] ", self.servers, self.history.len())
    }

    /// Runs one command line (already in the history).
    async fn dispatch(&mut self, words: &[String]) -> Outcome {
        let name = words[0].as_str();
        let Some(spec) = usage::find(name) else {
            complain!("{}", usage::help());
            if name != "help" {
                complain!("Command not found: Command not found {name}");
                return Outcome::NotFound;
            }
            return Outcome::Done;
        };
        let a = match args::parse(spec, &words[1..]) {
            Ok(a) => a,
            Err(args::ArgsError::Unrecognized(flag)) => {
                complain!("Unrecognized option: {flag}");
                complain!("{}", usage::usage_line(spec));
                return Outcome::Failed;
            }
            Err(args::ArgsError::Usage) => {
                complain!("{}", usage::usage_line(spec));
                return Outcome::Failed;
            }
        };
        let result = match name {
            "quit" => return Outcome::Quit,
            "redo" => return Box::pin(self.redo(a.arg(0))).await,
            "history" => self.print_history(),
            "printwatches" => self.printwatches(a.rest.first()),
            "version" => {
                say!(
                    "ZooKeeper CLI version: ensemble {}",
                    env!("CARGO_PKG_VERSION")
                );
                Ok(())
            }
            "connect" => self.reconnect(a.rest.first()).await,
            "close" => {
                self.close().await;
                Ok(())
            }
            _ => match &self.client {
                Some(client) => commands::execute(client, name, &a).await,
                None => Err(Failure::Message("Not connected".into())),
            },
        };
        match result {
            Ok(()) => Outcome::Done,
            Err(f) => {
                match f.text() {
                    Some(text) => complain!("{text}"),
                    None => complain!("{}", usage::usage_line(spec)),
                }
                Outcome::Failed
            }
        }
    }

    /// `redo N`: runs history entry N again, which takes this command's place in the history.
    async fn redo(&mut self, n: &str) -> Outcome {
        let current = self.history.len().saturating_sub(1);
        let line = match n.parse::<usize>() {
            Ok(i) if i < current => self.history[i].clone(),
            _ => {
                complain!("Command index out of range");
                return Outcome::Failed;
            }
        };
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if words.first().is_some_and(|w| w == "redo") {
            complain!("No redoing redos");
            return Outcome::Failed;
        }
        self.history[current] = line;
        self.dispatch(&words).await
    }

    /// `history`: the last ten commands before this one, and this one, numbered.
    fn print_history(&self) -> Result<(), Failure> {
        let start = self.history.len().saturating_sub(11);
        for (i, line) in self.history.iter().enumerate().skip(start) {
            say!("{i} - {line}");
        }
        Ok(())
    }

    /// `printwatches [on|off]`: sets or shows whether watch events are printed.
    fn printwatches(&self, arg: Option<&String>) -> Result<(), Failure> {
        match arg {
            Some(v) => self.print_watches.store(v == "on", Ordering::Relaxed),
            None => say!(
                "printwatches is {}",
                if self.print_watches.load(Ordering::Relaxed) {
                    "on"
                } else {
                    "off"
                }
            ),
        }
        Ok(())
    }

    /// `connect [host:port]`: closes the session and opens one on the servers given (or the
    /// same ones).
    async fn reconnect(&mut self, servers: Option<&String>) -> Result<(), Failure> {
        self.close().await;
        if let Some(s) = servers {
            self.servers = s.clone();
        }
        let client = open(&self.servers, self.tls.clone(), self.events.clone())
            .await
            .map_err(Failure::Message)?;
        self.keeper_state
            .store(KeeperState::SyncConnected.code(), Ordering::Relaxed);
        self.set_client(Some(client));
        Ok(())
    }

    /// Closes the session, if one is open.
    async fn close(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
        self.set_client(None);
    }

    fn set_client(&mut self, client: Option<ZkClient>) {
        if let Ok(mut shared) = self.shared.lock() {
            *shared = client.clone();
        }
        self.client = client;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_spelled_as_zkcli_does() {
        let args = ["ensemble", "shell", "-server", "h:1", "ls", "/"].map(OsString::from);
        let fixed = zkcli_spelling(args.clone().into_iter());
        assert_eq!(fixed[2], "--server");
        assert_eq!(fixed[3..], args[3..]);
        let other = ["ensemble", "bench", "-server"].map(OsString::from);
        assert_eq!(zkcli_spelling(other.clone().into_iter()), other.to_vec());
    }
}
