//! Child processes that die with their parent.

/// A `pre_exec` hook that has the child receive `signal` when the thread that spawned it (or
/// its whole process) dies, and fails the spawn if the parent is already gone. It makes only
/// async-signal-safe calls (prctl, getppid, errno) and allocates nothing, as a hook between
/// fork and exec must.
pub fn parent_death_signal(
    signal: libc::c_int,
) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    let parent = std::process::id() as libc::pid_t;
    move || {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        // The parent may have died between the fork and the prctl: then nothing would ever
        // send the signal.
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != parent {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    }
}
