//! Operating-system primitives of the process tier: futex waits on words of
//! the shared mapping, process liveness, exit-status descriptions.
//!
//! The system calls go through `rustix` (safe wrappers of the raw Linux
//! calls), so this module has no `unsafe`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
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

/// Tells a process's exit as it happens: a thread blocked in `poll` on the
/// process's pidfd (Linux 5.3 and later) runs `on_exit` once when the
/// process exits (a zombie counts as exited). It takes no CPU while it
/// waits; dropping the watch stops the thread.
///
/// A pidfd names one process, so a later process reusing the pid is never
/// mistaken for it; but the pid given here may already name such a later
/// process if the watched one is gone: callers check the process's start
/// time after [`start`](Self::start) (a mismatch means it is gone anyway).
pub(crate) struct ExitWatch {
    /// An eventfd the thread polls beside the pidfd: written to stop it.
    stop: Arc<std::os::fd::OwnedFd>,
    exited: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ExitWatch {
    /// Watches process `pid`; `None` where that is not possible (not
    /// Linux, a kernel without pidfds, no such process, no thread).
    #[cfg(target_os = "linux")]
    pub(crate) fn start(pid: u32, on_exit: impl FnOnce() + Send + 'static) -> Option<ExitWatch> {
        use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
        use rustix::process::{pidfd_open, Pid, PidfdFlags};

        let raw = i32::try_from(pid).ok().and_then(Pid::from_raw)?;
        let pidfd = pidfd_open(raw, PidfdFlags::empty()).ok()?;
        let stop = Arc::new(eventfd(0, EventfdFlags::CLOEXEC).ok()?);
        let exited = Arc::new(AtomicBool::new(false));
        let (stop_rx, flag) = (stop.clone(), exited.clone());
        let thread = std::thread::Builder::new()
            .name("dotcompute-ipc-exit-watch".into())
            .spawn(move || loop {
                let mut fds = [
                    PollFd::new(&pidfd, PollFlags::IN),
                    PollFd::new(&*stop_rx, PollFlags::IN),
                ];
                match poll(&mut fds, None) {
                    Err(rustix::io::Errno::INTR) => continue,
                    // Cannot wait any more: the periodic checks remain.
                    Err(_) => return,
                    Ok(_) => {}
                }
                if !fds[1].revents().is_empty() {
                    return;
                }
                if !fds[0].revents().is_empty() {
                    flag.store(true, Ordering::Release);
                    on_exit();
                    return;
                }
            })
            .ok()?;
        Some(ExitWatch {
            stop,
            exited,
            thread: Some(thread),
        })
    }

    /// Not Linux: no watch (the periodic checks notice an exit).
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn start(_pid: u32, _on_exit: impl FnOnce() + Send + 'static) -> Option<ExitWatch> {
        None
    }

    /// Whether the watched process has exited (seen by the watch thread).
    pub(crate) fn exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }
}

impl Drop for ExitWatch {
    fn drop(&mut self) {
        // An eventfd write of 1 makes it readable; it cannot fail short of
        // a counter overflow, which one write per watch cannot reach.
        let _ = rustix::io::write(&*self.stop, &1u64.to_ne_bytes());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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

    #[cfg(target_os = "linux")]
    #[test]
    fn an_exit_watch_calls_back_when_the_process_exits_and_stops_when_dropped() {
        let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let watch = ExitWatch::start(child.id(), move || tx.send(()).unwrap()).expect("pidfds on this kernel");
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "no call while it runs"
        );
        assert!(!watch.exited());
        kill_hard(child.id());
        rx.recv_timeout(Duration::from_secs(5))
            .expect("called back at the exit");
        assert!(watch.exited());
        child.wait().unwrap();
        drop(watch);

        // Dropped while the process still runs: the thread ends, no call.
        let mut other = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let watch = ExitWatch::start(other.id(), move || tx.send(()).unwrap()).expect("a watch");
        let t = std::time::Instant::now();
        drop(watch);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(ExitWatch::start(u32::MAX, || ()).is_none(), "no such process");
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
