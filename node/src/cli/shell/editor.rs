//! Reading command lines: a line editor with history and completion on a terminal, plain lines
//! from a pipe.

use super::usage::COMMANDS;
use ensemble_actors::zk_client::ZkClient;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use std::io::BufRead;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// The session completion lists znodes through (`None` while closed).
pub(super) type SharedClient = Arc<Mutex<Option<ZkClient>>>;

/// Completes command names, and znode paths by listing the parent.
struct Completion {
    client: SharedClient,
    runtime: tokio::runtime::Handle,
}

impl Completion {
    fn commands(word: &str) -> Vec<Pair> {
        COMMANDS
            .iter()
            .filter(|c| c.name.starts_with(word))
            .map(|c| Pair {
                display: c.name.to_string(),
                replacement: format!("{} ", c.name),
            })
            .collect()
    }

    fn paths(&self, word: &str) -> Vec<Pair> {
        let Some(slash) = word.rfind('/') else {
            return Vec::new();
        };
        let (parent, prefix) = (&word[..slash.max(1)], &word[slash + 1..]);
        let client = self.client.lock().ok().and_then(|c| c.clone());
        let Some(client) = client else {
            return Vec::new();
        };
        // The timer is made inside the runtime: this thread is not one of its own.
        let listing = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), client.get_children(parent, false)).await
        });
        let Ok(Ok((mut children, _))) = listing else {
            return Vec::new();
        };
        children.sort();
        let base = &word[..=slash];
        children
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .map(|c| Pair {
                replacement: format!("{base}{c}"),
                display: c,
            })
            .collect()
    }
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(' ').map_or(0, |i| i + 1);
        let word = &before[start..];
        let candidates = if before[..start].trim().is_empty() {
            Self::commands(word)
        } else {
            self.paths(word)
        };
        Ok((start, candidates))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// Starts the thread that reads lines: for each prompt sent to the returned sender, one line
/// (`None` at the end of input) arrives on `lines`.
pub(super) fn spawn_reader(
    terminal: bool,
    client: SharedClient,
    lines: UnboundedSender<Option<String>>,
) -> mpsc::Sender<String> {
    let (prompts_tx, prompts) = mpsc::channel::<String>();
    let runtime = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let editor = if terminal {
            Editor::<Completion, DefaultHistory>::new().ok()
        } else {
            None
        };
        match editor {
            Some(mut editor) => {
                editor.set_helper(Some(Completion { client, runtime }));
                edit_lines(&mut editor, &prompts, &lines);
            }
            None => pipe_lines(&prompts, &lines),
        }
    });
    prompts_tx
}

/// Lines through the line editor, each one added to its history; Ctrl-C gives an empty line.
fn edit_lines(
    editor: &mut Editor<Completion, DefaultHistory>,
    prompts: &mpsc::Receiver<String>,
    lines: &UnboundedSender<Option<String>>,
) {
    while let Ok(prompt) = prompts.recv() {
        let line = match editor.readline(&prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                Some(line)
            }
            Err(ReadlineError::Interrupted) => Some(String::new()),
            Err(_) => None,
        };
        let end = line.is_none();
        if lines.send(line).is_err() || end {
            break;
        }
    }
}

/// Lines from stdin as they come (no prompt, no echo).
fn pipe_lines(prompts: &mpsc::Receiver<String>, lines: &UnboundedSender<Option<String>>) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock().lines();
    while prompts.recv().is_ok() {
        let line = input.next().and_then(Result::ok);
        let end = line.is_none();
        if lines.send(line).is_err() || end {
            break;
        }
    }
}
