//! `reconfig`, with zkCli 3.8's options, checks and output.

use super::args::Args;
use super::commands::{at, Failure};
use super::output::print_stat;
use ensemble_actors::zk_client::ZkClient;
use ensemble_config::dynamic::{render_server, Membership};
use std::io::Write;

/// What a reconfig command asks for: joining, leaving, new members, config version.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    joining: String,
    leaving: String,
    members: String,
    version: i64,
}

/// Reads the options as zkCli does (`-v` is hex); `read` returns a `-file`'s content.
fn request(a: &Args, read: impl Fn(&str) -> std::io::Result<String>) -> Result<Request, Failure> {
    let version = match a.value("-v") {
        None => -1,
        Some(v) => i64::from_str_radix(v, 16).map_err(|_| {
            Failure::Message("-v must be followed by a long (configuration version)".into())
        })?,
    };
    let whole = a.value("-file").is_some() || a.value("-members").is_some();
    if whole && (a.value("-add").is_some() || a.value("-remove").is_some()) {
        return Err(Failure::Message(
            "Can't use -file or -members together with -add or -remove (mixing incremental and \
             non-incremental modes is not allowed)"
                .into(),
        ));
    }
    if a.value("-file").is_some() && a.value("-members").is_some() {
        return Err(Failure::Message(
            "Can't use -file and -members together (conflicting non-incremental modes)".into(),
        ));
    }
    let members = match a.value("-file") {
        Some(path) => file_members(path, &read)?,
        None => a.value("-members").unwrap_or_default().to_string(),
    };
    Ok(Request {
        joining: a.value("-add").unwrap_or_default().to_string(),
        leaving: a.value("-remove").unwrap_or_default().to_string(),
        members,
        version,
    })
}

/// The members a dynamic config file names, as one comma-separated list.
fn file_members(
    path: &str,
    read: &impl Fn(&str) -> std::io::Result<String>,
) -> Result<String, Failure> {
    let error = |e: String| Failure::Message(format!("Error processing {path}{e}"));
    let text = read(path).map_err(|e| error(e.to_string()))?;
    let m = Membership::parse(&text).map_err(|e| error(e.to_string()))?;
    Ok(m.servers
        .iter()
        .map(render_server)
        .collect::<Vec<_>>()
        .join(","))
}

/// `reconfig [-s] [-v version] [-file path | -members ...] | [-add ...] [-remove ...]`.
pub(super) async fn reconfig(c: &ZkClient, a: &Args) -> Result<(), Failure> {
    let r = request(a, |p| std::fs::read_to_string(p))?;
    let (data, stat) = c
        .reconfig(&r.joining, &r.leaving, &r.members, r.version)
        .await
        .map_err(at(""))?;
    say!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    );
    if a.has("-s") {
        print_stat(&stat);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::args::parse;
    use super::super::usage::COMMANDS;
    use super::*;

    fn args(line: &str) -> Args {
        let spec = COMMANDS.iter().find(|s| s.name == "reconfig").unwrap();
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(spec, &words).ok().unwrap()
    }

    fn no_file(_: &str) -> std::io::Result<String> {
        Err(std::io::Error::other("no file"))
    }

    fn message(r: Result<Request, Failure>) -> String {
        match r {
            Err(Failure::Message(m)) => m,
            _ => panic!("a message was expected"),
        }
    }

    #[test]
    fn options_read_as_zkcli() {
        let r = request(&args("-add server.4=h:1:2;3 -remove 2,3 -v 1a"), no_file)
            .ok()
            .unwrap();
        assert_eq!(
            r,
            Request {
                joining: "server.4=h:1:2;3".into(),
                leaving: "2,3".into(),
                members: String::new(),
                version: 0x1a,
            }
        );
        let file = |_: &str| Ok("server.1=h:1:2:participant;3\nversion=5\n".to_string());
        let r = request(&args("-file /x"), file).ok().unwrap();
        assert_eq!(r.members, "server.1=h:1:2:participant;0.0.0.0:3");
    }

    #[test]
    fn conflicting_options_are_refused_with_zkclis_words() {
        assert!(message(request(&args("-members a -add b"), no_file)).contains("mixing"));
        assert!(message(request(&args("-members a -file b"), no_file)).contains("conflicting"));
        assert!(message(request(&args("-v xyz"), no_file)).starts_with("-v must be"));
        assert!(message(request(&args("-file /x"), no_file)).starts_with("Error processing /x"));
    }
}
