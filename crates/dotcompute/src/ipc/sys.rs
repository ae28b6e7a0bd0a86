//! Operating-system primitives of the process tier: futex waits on words of
//! the shared mapping, process liveness, exit-status descriptions.
//!
//! The system calls go through `rustix` (safe wrappers of the raw Linux
//! calls), so this module has no `unsafe`.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// This process's id.
pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

/// Start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), used to tell a process from a later one that reuses
/// its pid. `0` where unknown (not Linux, or no `/proc`).
pub(crate) fn process_start_time(pid: u32) -> u64 {
    #[cfg(target_os = "linux")]
    {
        proc_stat(pid).map_or(0, |s| s.start_time)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        0
    }
}

#[cfg(target_os = "linux")]
struct ProcStat {
    state: char,
    start_time: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces
/// and parentheses, so the fields are counted from the last `)`.
#[cfg(target_os = "linux")]
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // Field 3 (state) is the first after the name; start time is field 22.
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// Whether a process `pid` exists (zombies included): signal 0 only, no
/// `/proc` read. The cheap half of [`process_alive`].
pub(crate) fn process_exists(pid: u32) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    rustix::process::test_kill_process(raw) != Err(rustix::io::Errno::SRCH)
}

/// Whether process `pid` still runs. `start_time` (from
/// [`process_start_time`], `0` for unknown) guards against pid reuse. A
/// zombie (exited, not yet reaped by its parent) counts as dead.
pub(crate) fn process_alive(pid: u32, start_time: u64) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    // Signal 0 sends nothing: it checks that the process exists and may be
    // signalled.
    if rustix::process::test_kill_process(raw) == Err(rustix::io::Errno::SRCH) {
        return false;
    }
    // Ok, or EPERM: the process exists (maybe under another user).
    #[cfg(target_os = "linux")]
    {
        match proc_stat(pid) {
            Some(stat) => {
                if matches!(stat.state, 'Z' | 'X' | 'x') {
                    return false;
                }
                if start_time != 0 && stat.start_time != start_time {
                    return false;
                }
            }
            // Vanished between the two checks (if /proc works at all; without
            // it the kill check above is all we have).
            None => {
                if std::path::Path::new("/proc/self/stat").exists() {
                    return false;
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = start_time;
    true
}

/// Sends `SIGKILL` to `pid` (used for peers that are not our children; a
/// spawned child is killed through its `std::process::Child`).
#[cfg(all(test, not(loom)))]
pub(crate) fn kill_hard(pid: u32) {
    if let Some(raw) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(raw, rustix::process::Signal::KILL);
    }
}

/// A readable account of how a process ended.
pub(crate) fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exited with code {code}")
    } else if let Some(sig) = status.signal() {
        format!("killed by signal {sig} ({})", signal_name(sig))
    } else {
        format!("ended: {status}")
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGINT => "SIGINT",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Sleeps until `word` is woken by [`futex_wake`] from either process, its
/// value differs from `expected`, or `timeout` passes (spurious wake-ups are
/// possible; callers re-check their condition).
///
/// This is `FUTEX_WAIT` on the shared word, deliberately without
/// `FUTEX_PRIVATE_FLAG`: the word lives in a `MAP_SHARED` file mapping, and
/// the kernel keys a shared futex by (inode, offset), so a waker in another
/// process reaches it.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = rustix::time::Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    // EAGAIN (the value changed), EINTR and ETIMEDOUT all mean: re-check.
    let _ = rustix::thread::futex::wait(word, rustix::thread::futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes up to `count` waiters of [`futex_wait`] on `word`.
pub(crate) fn futex_wake(word: &AtomicU32, count: i32) {
    let count = u32::try_from(count).unwrap_or(0);
    let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), count);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_has_a_start_time() {
        let pid = current_pid();
        let start = process_start_time(pid);
        assert!(process_alive(pid, start));
        #[cfg(target_os = "linux")]
        {
            assert!(start > 0);
            assert!(!process_alive(pid, start + 1), "a different start time means pid reuse");
        }
    }

    #[test]
    fn nonexistent_and_reaped_processes_are_dead() {
        assert!(!process_alive(0, 0));
        assert!(!process_alive(u32::MAX, 0));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid, 0));
    }

    #[test]
    fn zombie_is_dead() {
        let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        let pid = child.id();
        let start = process_start_time(pid);
        assert!(process_alive(pid, start));
        kill_hard(pid);
        // Not reaped yet: a zombie for a moment, which must read as dead.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while process_alive(pid, start) {
            assert!(std::time::Instant::now() < deadline, "killed child still alive");
            std::thread::sleep(Duration::from_millis(1));
        }
        let status = child.wait().unwrap();
        assert_eq!(describe_exit(status), "killed by signal 9 (SIGKILL)");
    }

    #[test]
    fn futex_wait_times_out_and_wakes() {
        let word = std::sync::Arc::new(AtomicU32::new(0));
        let t = std::time::Instant::now();
        futex_wait(&word, 0, Duration::from_millis(20));
        assert!(t.elapsed() >= Duration::from_millis(10));
        // Value already different: returns at once.
        let t = std::time::Instant::now();
        futex_wait(&word, 1, Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(1));
        let w2 = word.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.store(1, std::sync::atomic::Ordering::Release);
            futex_wake(&w2, 1);
        });
        let t = std::time::Instant::now();
        while word.load(std::sync::atomic::Ordering::Acquire) == 0 {
            futex_wait(&word, 0, Duration::from_secs(5));
        }
        assert!(t.elapsed() < Duration::from_secs(2));
        waker.join().unwrap();
    }
}
