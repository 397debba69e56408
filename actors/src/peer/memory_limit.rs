//! How much memory this process may use: the machine's, or less when its control group (a
//! container's limit, a systemd unit's `MemoryMax`) caps it. A budget sized from the machine
//! alone would let a server in a 2 GiB container on a 64 GiB host plan for 16 GiB and be
//! killed by the kernel long before it reached the budget.
//!
//! Both cgroup layouts are read: v2 (`memory.max` under the unified mount) and v1
//! (`memory.limit_in_bytes` under the memory controller's mount). The process's group comes
//! from `/proc/self/cgroup`, the mounts from `/proc/self/mountinfo`; a limit on any group
//! between the process's and the mount's root applies, so the smallest counts.

use std::path::{Path, PathBuf};

/// A v1 limit at or above this means "no limit": the kernel reports unlimited as the largest
/// page-aligned `i64` (about 2^63).
const V1_UNLIMITED: u64 = 1 << 62;

/// The memory this process may use in bytes: the machine's, or its control group's limit when
/// that is lower. `None` when the system reports neither.
pub(crate) fn memory_limit() -> Option<u64> {
    let cgroup = cgroup_limit(&|p: &Path| std::fs::read_to_string(p).ok());
    match (physical_memory(), cgroup) {
        (Some(m), Some(c)) => Some(m.min(c)),
        (m, c) => m.or(c),
    }
}

/// The machine's memory in bytes, if the system says.
fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf takes an integer and touches no memory of ours.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let (pages, size) = (u64::try_from(pages).ok()?, u64::try_from(size).ok()?);
    pages.checked_mul(size).filter(|&m| m > 0)
}

/// The lowest memory limit on this process's control group and its ancestors, read through
/// `read` (a file's text, `None` when it cannot be read).
fn cgroup_limit(read: &dyn Fn(&Path) -> Option<String>) -> Option<u64> {
    let groups = read(Path::new("/proc/self/cgroup"))?;
    let mounts = read(Path::new("/proc/self/mountinfo"))?;
    limit_files(&groups, &mounts)
        .iter()
        .filter_map(|file| read(file).and_then(|text| parse_limit(&text)))
        .min()
}

/// The limit files that apply to the process whose `/proc/self/cgroup` is `groups`, given
/// `/proc/self/mountinfo`: its own group's and each ancestor's up to the mount's root. The
/// v1 memory controller is preferred when the process is in one (a hybrid host also mounts
/// a unified hierarchy that does not control memory).
fn limit_files(groups: &str, mounts: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for (v1, group) in memory_groups(groups) {
        let fs = if v1 { "cgroup" } else { "cgroup2" };
        let file = if v1 {
            "memory.limit_in_bytes"
        } else {
            "memory.max"
        };
        for (root, mount_point) in cgroup_mounts(mounts, fs, v1) {
            let Some(relative) = group_under(&group, &root) else {
                continue;
            };
            let mut dir = mount_point.join(relative);
            loop {
                found.push(dir.join(file));
                if dir == mount_point || !dir.pop() {
                    break;
                }
            }
        }
        if !found.is_empty() {
            break;
        }
    }
    found
}

/// The process's groups that may carry a memory limit, v1's memory controller first: (is
/// v1, the group's path).
fn memory_groups(groups: &str) -> Vec<(bool, String)> {
    let mut found: Vec<(bool, String)> = groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            if controllers.split(',').any(|c| c == "memory") {
                Some((true, path.to_string()))
            } else if id == "0" && controllers.is_empty() {
                Some((false, path.to_string()))
            } else {
                None
            }
        })
        .collect();
    found.sort_by_key(|(v1, _)| !v1);
    found
}

/// The mounts of file system type `fs` (for v1, only those of the memory controller): the
/// group each mount shows as its root, and where it is mounted.
fn cgroup_mounts(mounts: &str, fs: &str, v1: bool) -> Vec<(String, PathBuf)> {
    mounts
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut fields = before.split(' ');
            let root = fields.nth(3)?;
            let mount_point = fields.next()?;
            let mut rest = after.split(' ');
            let fs_type = rest.next()?;
            let options = rest.nth(1).unwrap_or("");
            let memory = !v1 || options.split(',').any(|o| o == "memory");
            (fs_type == fs && memory)
                .then(|| (unescape(root), PathBuf::from(unescape(mount_point))))
        })
        .collect()
}

/// `group` as a path below a mount whose root is `root`, or `None` when it is not below it.
fn group_under<'a>(group: &'a str, root: &str) -> Option<&'a str> {
    let root = root.trim_end_matches('/');
    let rest = group.strip_prefix(root)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    Some(rest.trim_start_matches('/'))
}

/// A mountinfo field with its octal escapes (`\040` for a space) decoded.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match code {
            Some(c) if bytes[i] == b'\\' => {
                out.push(c);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A limit file's value in bytes; `None` for no limit (`max`, or v1's unlimited) or text
/// that is not a number.
fn parse_limit(text: &str) -> Option<u64> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0 && n < V1_UNLIMITED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A reader over these files.
    fn files(list: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> {
        let map: HashMap<PathBuf, String> = list
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        move |p: &Path| map.get(p).cloned()
    }

    /// A v1 hybrid host as this project's CI machine is: the process in a nested memory group,
    /// the controller mounted from the hierarchy's root.
    const V1_GROUPS: &str = "9:name=systemd:/\n4:memory:/jobs/abc\n1:cpu:/\n0::/\n";
    const V1_MOUNTS: &str = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_v1_group_and_its_ancestors_are_read_up_to_the_mount() {
        assert_eq!(
            limit_files(V1_GROUPS, V1_MOUNTS),
            [
                "/sys/fs/cgroup/memory/jobs/abc/memory.limit_in_bytes",
                "/sys/fs/cgroup/memory/jobs/memory.limit_in_bytes",
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn the_lowest_limit_on_the_way_up_counts() {
        let read = files(&[
            ("/proc/self/cgroup", V1_GROUPS),
            ("/proc/self/mountinfo", V1_MOUNTS),
            (
                "/sys/fs/cgroup/memory/jobs/abc/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "/sys/fs/cgroup/memory/jobs/memory.limit_in_bytes",
                "2147483648\n",
            ),
            (
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        assert_eq!(cgroup_limit(&read), Some(2 << 30));
    }

    #[test]
    fn a_v2_container_sees_its_own_group_as_the_root() {
        let groups = "0::/\n";
        let mounts = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            limit_files(groups, mounts),
            [PathBuf::from("/sys/fs/cgroup/memory.max")]
        );
        let read = files(&[
            ("/proc/self/cgroup", groups),
            ("/proc/self/mountinfo", mounts),
            ("/sys/fs/cgroup/memory.max", "536870912\n"),
        ]);
        assert_eq!(cgroup_limit(&read), Some(512 << 20));
    }

    #[test]
    fn a_v2_unit_without_a_limit_has_none() {
        let groups = "0::/system.slice/ensemble.service\n";
        let mounts = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let read = files(&[
            ("/proc/self/cgroup", groups),
            ("/proc/self/mountinfo", mounts),
            (
                "/sys/fs/cgroup/system.slice/ensemble.service/memory.max",
                "max\n",
            ),
            ("/sys/fs/cgroup/system.slice/memory.max", "max\n"),
        ]);
        assert_eq!(cgroup_limit(&read), None);
    }

    #[test]
    fn a_v1_container_mounted_at_its_own_group_reads_that_group() {
        // Docker without a cgroup namespace: the mount's root is the container's group.
        let groups = "5:memory:/docker/f00d\n";
        let mounts = "40 31 0:33 /docker/f00d /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
        assert_eq!(
            limit_files(groups, mounts),
            [PathBuf::from("/sys/fs/cgroup/memory/memory.limit_in_bytes")]
        );
    }

    #[test]
    fn a_group_outside_the_mount_and_a_mount_point_with_a_space() {
        assert_eq!(group_under("/docker/f00d", "/docker/f0"), None);
        assert_eq!(group_under("/a/b", "/"), Some("a/b"));
        let mounts = "35 31 0:32 / /mnt/cg\\040v1 rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            limit_files("4:memory:/\n", mounts),
            [PathBuf::from("/mnt/cg v1/memory.limit_in_bytes")]
        );
    }

    #[test]
    fn limits_read_as_bytes_and_unlimited_reads_as_none() {
        assert_eq!(parse_limit("1073741824\n"), Some(1 << 30));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712"), None);
        assert_eq!(parse_limit("0"), None);
        assert_eq!(parse_limit("garbage"), None);
    }

    #[test]
    fn no_proc_files_means_the_machine_alone() {
        assert_eq!(cgroup_limit(&files(&[])), None);
        let limit = memory_limit().expect("the system reports its memory");
        assert!(limit > 64 << 20, "{limit} bytes");
        assert!(limit <= physical_memory().unwrap_or(u64::MAX));
    }
}
