//! Figures of the server's process that ZooKeeper reports from the JVM's OS bean.

/// Open file descriptors of this process, where the OS tells (Linux: `/proc/self/fd`).
pub fn open_fds() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64)
}

/// The soft limit on open file descriptors.
pub fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn descriptors_are_counted_within_the_limit() {
        if let (Some(open), Some(max)) = (super::open_fds(), super::max_fds()) {
            assert!(open > 0 && open <= max, "{open} of {max}");
        }
    }
}
