//! Splitting a command line into flags and positional arguments, and reading ACL text.

use super::usage::Spec;
use ensemble_messages::jute::{Acl, Id};
use ensemble_messages::zk::perm;
use std::collections::HashMap;

/// A command's arguments: flags (anywhere on the line, as zkCli's parser takes them) and the
/// positional words in order.
#[derive(Debug, Default)]
pub(super) struct Args {
    switches: Vec<String>,
    values: HashMap<String, String>,
    /// Every flag, switch or option, in the order given.
    given: Vec<String>,
    /// Positional arguments.
    pub rest: Vec<String>,
}

/// Why a command line does not parse.
#[derive(Debug, PartialEq)]
pub(super) enum ArgsError {
    /// A flag the command does not take, e.g. `-x`.
    Unrecognized(String),
    /// A flag missing its value, or too few positional arguments.
    Usage,
}

impl Args {
    /// Whether the switch `flag` (e.g. `-s`) was given.
    pub fn has(&self, flag: &str) -> bool {
        self.switches.iter().any(|f| f == flag)
    }

    /// The value given to `flag` (e.g. `-v 3`).
    pub fn value(&self, flag: &str) -> Option<&str> {
        self.values.get(flag).map(String::as_str)
    }

    /// The flags given, in order.
    pub fn given(&self) -> &[String] {
        &self.given
    }

    /// The positional argument at `i`, empty when absent.
    pub fn arg(&self, i: usize) -> &str {
        self.rest.get(i).map_or("", String::as_str)
    }
}

/// Whether `word` is a flag rather than a value: `-x`, but not `-` or a negative number.
fn looks_like_flag(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-') && word[1..].parse::<f64>().is_err()
}

/// Parses `words` (the words after the command name) against the command's flags.
pub(super) fn parse(spec: &Spec, words: &[String]) -> Result<Args, ArgsError> {
    let mut args = Args::default();
    let mut words = words.iter();
    while let Some(w) = words.next() {
        if spec.options.contains(&w.as_str()) {
            let value = words.next().ok_or(ArgsError::Usage)?;
            args.values.insert(w.clone(), value.clone());
            args.given.push(w.clone());
        } else if spec.switches.contains(&w.as_str()) {
            args.switches.push(w.clone());
            args.given.push(w.clone());
        } else if looks_like_flag(w) {
            return Err(ArgsError::Unrecognized(w.clone()));
        } else {
            args.rest.push(w.clone());
        }
    }
    if args.rest.len() < spec.required {
        return Err(ArgsError::Usage);
    }
    Ok(args)
}

/// `scheme:id:perms[,...]`, e.g. `world:anyone:cdrwa` or `digest:alice:HASH=:r`.
pub(super) fn parse_acl(text: &str) -> Option<Vec<Acl>> {
    text.split(',').map(parse_acl_entry).collect()
}

fn parse_acl_entry(entry: &str) -> Option<Acl> {
    let (rest, perms) = entry.rsplit_once(':')?;
    let (scheme, id) = rest.split_once(':')?;
    let mut bits = 0;
    for c in perms.chars() {
        bits |= match c {
            'c' => perm::CREATE,
            'd' => perm::DELETE,
            'r' => perm::READ,
            'w' => perm::WRITE,
            'a' => perm::ADMIN,
            _ => return None,
        };
    }
    Some(Acl {
        perms: bits,
        id: Id {
            scheme: scheme.into(),
            id: id.into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::shell::usage::find;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags_anywhere_values_and_usage_errors() {
        let rw = find("removewatches").unwrap();
        let a = parse(rw, &words("/a -d -l")).unwrap();
        assert!(a.has("-d") && a.has("-l") && a.arg(0) == "/a");
        let set = find("set").unwrap();
        let a = parse(set, &words("-v 3 /a -1")).unwrap();
        assert_eq!((a.value("-v"), a.arg(1)), (Some("3"), "-1"));
        assert_eq!(parse(set, &words("/a")).unwrap_err(), ArgsError::Usage);
        assert_eq!(parse(set, &words("/a x -v")).unwrap_err(), ArgsError::Usage);
        assert_eq!(
            parse(find("ls").unwrap(), &words("-x /")).unwrap_err(),
            ArgsError::Unrecognized("-x".into())
        );
    }

    #[test]
    fn acls() {
        let acl = parse_acl("world:anyone:r,digest:alice:x=:cdrwa").unwrap();
        assert_eq!(
            (acl[0].perms, acl[1].id.id.as_str()),
            (perm::READ, "alice:x=")
        );
        assert!(parse_acl("world:anyone:q").is_none());
    }
}
