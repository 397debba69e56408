//! The commands the shell knows: their names, flags and usage lines, as zkCli prints them.

/// One command: its name, the flags it takes and how many positional arguments it needs.
pub(super) struct Spec {
    /// The command word.
    pub name: &'static str,
    /// What follows the name in zkCli's usage line.
    pub usage: &'static str,
    /// Flags without a value, e.g. `-s`.
    pub switches: &'static [&'static str],
    /// Flags followed by a value, e.g. `-v version`.
    pub options: &'static [&'static str],
    /// Positional arguments the command cannot do without.
    pub required: usize,
}

const fn spec(
    name: &'static str,
    usage: &'static str,
    switches: &'static [&'static str],
    options: &'static [&'static str],
    required: usize,
) -> Spec {
    Spec {
        name,
        usage,
        switches,
        options,
        required,
    }
}

/// Every command, in zkCli's (alphabetical, case-sensitive) help order.
pub(super) const COMMANDS: &[Spec] = &[
    spec(
        "addWatch",
        "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
        &[],
        &["-m"],
        1,
    ),
    spec("addauth", "scheme auth", &[], &[], 2),
    spec("close", "", &[], &[], 0),
    spec("config", "[-c] [-w] [-s]", &["-c", "-w", "-s"], &[], 0),
    spec("connect", "host:port", &[], &[], 0),
    spec(
        "create",
        "[-s] [-e] [-c] [-t ttl] path [data] [acl]",
        &["-s", "-e", "-c"],
        &["-t"],
        1,
    ),
    spec("delete", "[-v version] path", &[], &["-v"], 1),
    spec("deleteall", "path [-b batch size]", &[], &["-b"], 1),
    spec(
        "delquota",
        "[-n|-b|-N|-B] path",
        &["-n", "-b", "-N", "-B"],
        &[],
        1,
    ),
    spec("get", "[-s] [-w] path", &["-s", "-w"], &[], 1),
    spec("getAcl", "[-s] path", &["-s"], &[], 1),
    spec("getAllChildrenNumber", "path", &[], &[], 1),
    spec("getEphemerals", "path", &[], &[], 0),
    spec("history", "", &[], &[], 0),
    spec("listquota", "path", &[], &[], 1),
    spec("ls", "[-s] [-w] [-R] path", &["-s", "-w", "-R"], &[], 1),
    spec("printwatches", "on|off", &[], &[], 0),
    spec("quit", "", &[], &[], 0),
    spec(
        "reconfig",
        "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
        &["-s"],
        &["-v", "-file", "-members", "-add", "-remove"],
        0,
    ),
    spec("redo", "cmdno", &[], &[], 1),
    spec(
        "removewatches",
        "path [-c|-d|-a] [-l]",
        &["-c", "-d", "-a", "-l"],
        &[],
        1,
    ),
    spec("set", "[-s] [-v version] path data", &["-s"], &["-v"], 2),
    spec(
        "setAcl",
        "[-s] [-v version] [-R] path acl",
        &["-s", "-R"],
        &["-v"],
        2,
    ),
    spec(
        "setquota",
        "-n|-b|-N|-B val path",
        &[],
        &["-n", "-b", "-N", "-B"],
        0,
    ),
    spec("stat", "[-w] path", &["-w"], &[], 1),
    spec("sync", "path", &[], &[], 1),
    spec("version", "", &[], &[], 0),
    spec("whoami", "", &[], &[], 0),
];

/// The command named `name`, if the shell knows it.
pub(super) fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// One command's usage line, e.g. `stat [-w] path`.
pub(super) fn usage_line(spec: &Spec) -> String {
    format!("{} {}", spec.name, spec.usage)
}

/// zkCli's help: how the shell is started, then every command's usage.
pub(super) fn help() -> String {
    let mut text = String::from("ZooKeeper -server host:port cmd args");
    for spec in COMMANDS {
        text.push_str("\n\t");
        text.push_str(&usage_line(spec));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_command_in_order() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(help().contains("\n\tstat [-w] path\n\tsync path\n"));
        assert_eq!(find("set").map(|s| s.required), Some(2));
        assert!(find("help").is_none());
    }
}
