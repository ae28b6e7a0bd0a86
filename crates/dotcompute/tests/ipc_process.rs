//! Two-process tests of the process tier.
//!
//! The test binary is its own kernel process: `child_main` does nothing in a
//! normal run, but when the parent re-executes this binary with
//! `--exact child_main` and `DOTCOMPUTE_IPC_TEST_CHILD=<mode>` set, it serves
//! the region named by `DOTCOMPUTE_IPC` in that mode and exits.

#![cfg(unix)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dotcompute::ipc::byte_ring::{self, RingConsumer, RingProducer};
use dotcompute::ipc::shm::{Region, Role};
use dotcompute::ipc::{
    self, IpcConfig, IpcContext, IpcError, ProcessChannel, ProcessCommand, RegionConfig, SpawnCommand, WaitPolicy,
};
use dotcompute::{Error, KernelState, Message, MessageHeader, RestartPolicy, RingKernelRuntime, TerminateOptions};
use serde::{Deserialize, Serialize};

const CHILD_ENV: &str = "DOTCOMPUTE_IPC_TEST_CHILD";
const MARKER_ENV: &str = "DOTCOMPUTE_IPC_TEST_MARKER";
const NAME_ENV: &str = "DOTCOMPUTE_IPC_TEST_NAME";
const COUNT_ENV: &str = "DOTCOMPUTE_IPC_TEST_COUNT";
/// Overrides the number of typed messages of `million_messages_round_trip_in_order`.
const MESSAGES_ENV: &str = "DOTCOMPUTE_IPC_TEST_MESSAGES";

#[derive(Debug, Clone, Serialize, Deserialize, Message)]
struct Req {
    seq: u64,
    header: MessageHeader,
}

#[derive(Debug, Clone, Serialize, Deserialize, Message)]
struct Resp {
    seq: u64,
    value: u64,
    pid: u32,
    header: MessageHeader,
}

fn req(seq: u64) -> Req {
    Req {
        seq,
        header: MessageHeader::new(),
    }
}

fn answer(r: &Req) -> Resp {
    Resp {
        seq: r.seq,
        value: r.seq.wrapping_mul(2).wrapping_add(1),
        pid: std::process::id(),
        header: MessageHeader::reply_to(&r.header),
    }
}

/// The kernel process. Modes:
/// - `echo`: answer every request;
/// - `echo-marker`: same, then write the file `$DOTCOMPUTE_IPC_TEST_MARKER`
///   once `serve` returned Ok (a clean, requested exit);
/// - `fail-at-3`: the handler fails on request 3;
/// - `fail-hostile`: the handler fails at once with a text full of NULs,
///   terminal escapes and length;
/// - `stall`: take one request, then never read again;
/// - `server`: create the region `$DOTCOMPUTE_IPC_TEST_NAME` and serve hosts
///   that attach by name;
/// - `raw-echo`: `$DOTCOMPUTE_IPC_TEST_COUNT` raw byte records through the
///   public ring API, each checked and answered;
/// - `echo-report`: `echo`, then write how `serve` ended to the marker file;
/// - `echo-report-slow-checks`: `echo-report` with a `check_interval` of
///   10 s, so only a watched exit of its host ends it sooner;
/// - `even-only`: answer the requests with an even `seq`, take the others
///   without a reply;
/// - `host-crash`: act as a *host*: spawn an `echo-report-slow-checks`
///   kernel, make one call, write the kernel's pid to
///   `$DOTCOMPUTE_IPC_TEST_NAME`, then die by SIGKILL (no destructor runs).
#[test]
fn child_main() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let result = match mode.as_str() {
        "echo" => ipc::serve(|r: Req| Ok::<_, String>(answer(&r))),
        "echo-marker" => {
            let r = ipc::serve(|r: Req| Ok::<_, String>(answer(&r)));
            if r.is_ok() {
                std::fs::write(std::env::var(MARKER_ENV).unwrap(), b"clean").unwrap();
            }
            r
        }
        "fail-hostile" => ipc::serve(|_: Req| Err::<Resp, _>(format!("bad\0\u{1b}[2J\r\n{}", "x".repeat(1000)))),
        "fail-at-3" => ipc::serve(|r: Req| {
            if r.seq == 3 {
                Err(format!("cannot handle request {}", r.seq))
            } else {
                Ok(answer(&r))
            }
        }),
        "stall" => {
            let mut ctx = IpcContext::<Req, Resp>::from_env().unwrap();
            let _ = ctx.receive();
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        "server" => {
            let name = std::env::var(NAME_ENV).unwrap();
            IpcContext::<Req, Resp>::create(&name, &RegionConfig::default(), WaitPolicy::default())
                .and_then(|ctx| ctx.serve(|r: Req| Ok::<_, String>(answer(&r))))
        }
        "raw-echo" => {
            raw_echo();
            Ok(())
        }
        "echo-report" => {
            let r = ipc::serve(|r: Req| Ok::<_, String>(answer(&r)));
            std::fs::write(std::env::var(MARKER_ENV).unwrap(), format!("{r:?}")).unwrap();
            r
        }
        "echo-report-slow-checks" => {
            let policy = WaitPolicy {
                check_interval: SLOW_CHECKS,
                ..WaitPolicy::default()
            };
            let r = IpcContext::<Req, Resp>::from_env_with(policy)
                .and_then(|ctx| ctx.serve(|r: Req| Ok::<_, String>(answer(&r))));
            std::fs::write(std::env::var(MARKER_ENV).unwrap(), format!("{r:?}")).unwrap();
            r
        }
        "even-only" => {
            let mut ctx = IpcContext::<Req, Resp>::from_env().unwrap();
            loop {
                match ctx.receive() {
                    Ok(r) if r.seq % 2 == 0 => ctx.send(&answer(&r)).unwrap(),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            ctx.close();
            Ok(())
        }
        "host-crash" => host_that_crashes(),
        other => panic!("unknown child mode {other}"),
    };
    // Leave without the test harness's summary; the code tells the parent.
    std::process::exit(if result.is_ok() { 0 } else { 3 });
}

/// Record `seq` of the raw test: 8 to 128 bytes derived from `seq`, so that
/// records span one to five 32-byte slots and wrap around the ring.
fn raw_record(seq: u64, reply: bool, out: &mut Vec<u8>) {
    const FILL: [u8; 120] = {
        let mut f = [0u8; 120];
        let mut i = 0;
        while i < 120 {
            f[i] = (i as u8).wrapping_mul(37).wrapping_add(11);
            i += 1;
        }
        f
    };
    out.clear();
    let head = if reply {
        seq.wrapping_mul(2).wrapping_add(1)
    } else {
        seq
    };
    out.extend_from_slice(&head.to_le_bytes());
    let extra = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57) as usize % 121; // 0..=120
    out.extend_from_slice(&FILL[..extra]);
    if let Some(last) = out.last_mut() {
        *last ^= seq as u8;
    }
}

/// Spin briefly, then yield (2 shared cores); fails the test on a deadline.
fn backoff(spins: &mut u32, deadline: Instant, what: &str) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
        if (*spins).is_multiple_of(1024) {
            assert!(Instant::now() < deadline, "timed out waiting to {what}");
        }
    }
}

fn raw_push(tx: &mut RingProducer, record: &[u8], deadline: Instant) {
    let mut spins = 0;
    while !tx.try_push(record).unwrap() {
        backoff(&mut spins, deadline, "push");
    }
}

fn raw_pop(rx: &mut RingConsumer, out: &mut Vec<u8>, deadline: Instant) {
    let mut spins = 0;
    while !rx.try_pop(out).unwrap() {
        backoff(&mut spins, deadline, "pop");
    }
}

fn raw_echo() {
    let path = std::env::var(ipc::ENV_VAR).unwrap();
    let n: u64 = std::env::var(COUNT_ENV).unwrap().parse().unwrap();
    let region = Arc::new(Region::open(&path, Role::Kernel, Duration::from_secs(10)).unwrap());
    let (mut tx, mut rx) = byte_ring::split(&region).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut got, mut expect) = (Vec::new(), Vec::new());
    for seq in 0..n {
        raw_pop(&mut rx, &mut got, deadline);
        raw_record(seq, false, &mut expect);
        assert_eq!(got, expect, "request {seq}");
        raw_record(seq, true, &mut expect);
        raw_push(&mut tx, &expect, deadline);
    }
}

/// Checks this far apart leave a watched exit as the only way a wait can
/// notice a dead peer within a test's bounds.
const SLOW_CHECKS: Duration = Duration::from_secs(10);

fn host_that_crashes() -> Result<(), IpcError> {
    let dir = PathBuf::from(std::env::var(COUNT_ENV).unwrap());
    let marker = std::env::var(MARKER_ENV).unwrap();
    let kernel = child("echo-report-slow-checks").env(MARKER_ENV, marker);
    let mut chan = ProcessChannel::<Req, Resp>::spawn(kernel, &config_in(&dir))?;
    let resp = chan.call(&req(1))?;
    std::fs::write(std::env::var(NAME_ENV).unwrap(), resp.pid.to_string()).unwrap();
    kill9(std::process::id());
    unreachable!("killed");
}

fn child(mode: &str) -> SpawnCommand {
    SpawnCommand::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
}

/// A config whose regions go to a private directory, so a test can check
/// that they are removed.
fn config_in(dir: &Path) -> IpcConfig {
    IpcConfig {
        dir: Some(dir.to_path_buf()),
        ..IpcConfig::default()
    }
}

fn region_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("dotcompute-"))
        .collect()
}

fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Kills `pid` with SIGKILL from another thread after `delay`; the thread
/// gives the moment of the kill.
fn kill9_after(pid: u32, delay: Duration) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        kill9(pid);
        Instant::now()
    })
}

/// (a) A million raw records (8 to 128 bytes, spanning up to 5 slots of a
/// 32-slot ring, so wrap-around and multi-slot records are constant) go to a
/// spawned process through the public ring API and come back transformed;
/// both sides check every byte and the order. This is the transport alone,
/// with no codec, and runs at full size in every build.
#[test]
fn million_raw_records_cross_process() {
    const N: u64 = 1_000_000;
    const WINDOW: u64 = 16;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dotcompute-raw");
    let config = RegionConfig {
        capacity: 32,
        slot_size: 32,
        ..RegionConfig::default()
    };
    let region = Arc::new(Region::create(&path, Role::Host, &config).unwrap());
    let (mut tx, mut rx) = byte_ring::split(&region).unwrap();
    let mut kernel = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "raw-echo")
        .env(COUNT_ENV, N.to_string())
        .env(ipc::ENV_VAR, &path)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    let (mut record, mut got, mut expect) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sent, mut received) = (0u64, 0u64);
    let mut spins = 0;
    raw_record(0, false, &mut record);
    while received < N {
        // Never block on a full request ring: the kernel may be blocked on a
        // full reply ring that only we drain.
        while sent < N && sent - received < WINDOW && tx.try_push(&record).unwrap() {
            sent += 1;
            raw_record(sent, false, &mut record);
        }
        if rx.try_pop(&mut got).unwrap() {
            raw_record(received, true, &mut expect);
            assert_eq!(got, expect, "reply {received}");
            received += 1;
            spins = 0;
        } else {
            if spins % 4096 == 4095 {
                assert!(kernel.try_wait().unwrap().is_none(), "kernel process ended early");
            }
            backoff(&mut spins, deadline, "receive a reply");
        }
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{N} raw records through a child process and back in {elapsed:?} ({:.0} records/s)",
        N as f64 / elapsed.as_secs_f64()
    );
    assert!(kernel.wait().unwrap().success());
    assert!(!rx.try_pop(&mut got).unwrap(), "nothing extra");
    drop((tx, rx, region));
    assert!(!path.exists());
}

/// (a) Typed messages through the spawned process and back with the codec,
/// pipelined with up to 256 in flight; every reply is checked for content,
/// order and correlation. Nothing is lost or duplicated.
///
/// A million in release builds (`cargo test --release`: about 1.2 s on the
/// project's 2-core VM). In debug builds the unoptimised codec costs about
/// 11 µs of CPU per round trip (encode + decode on both sides, ~14 s for a
/// million), so the default is 100 000 there (~1.5 s) to keep the suite fast
/// on 2 cores; `DOTCOMPUTE_IPC_TEST_MESSAGES=1000000` runs the full million
/// in any build. The transport itself carries a full million in every build
/// (`million_raw_records_cross_process`, ~2.5 s in debug).
#[test]
fn million_messages_round_trip_in_order() {
    let default = if cfg!(debug_assertions) { 100_000 } else { 1_000_000 };
    let n: u64 = std::env::var(MESSAGES_ENV).map_or(default, |v| v.parse().unwrap());
    const WINDOW: u64 = 256;
    let dir = tempfile::tempdir().unwrap();
    let mut chan = ProcessChannel::<Req, Resp>::spawn(child("echo"), &config_in(dir.path())).unwrap();
    let child_pid = chan.peer_pid();
    let start = Instant::now();
    let mut in_flight = VecDeque::with_capacity(WINDOW as usize);
    let mut sent = 0u64;
    let mut received = 0u64;
    while received < n {
        while sent < n && sent - received < WINDOW {
            let r = req(sent);
            in_flight.push_back(r.header.message_id);
            chan.send(&r).unwrap();
            sent += 1;
        }
        let resp = chan.recv().unwrap();
        let id = in_flight.pop_front().unwrap();
        assert_eq!(resp.seq, received, "replies arrive in order, none lost");
        assert_eq!(resp.value, received * 2 + 1);
        assert_eq!(resp.correlation_id(), Some(id));
        assert_eq!(resp.pid, child_pid);
        received += 1;
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{n} typed round trips through a child process in {elapsed:?} ({:.0} msg/s)",
        n as f64 / elapsed.as_secs_f64()
    );
    assert!(matches!(chan.try_recv(), Ok(None)), "nothing extra");
    let (exit, rest) = chan.terminate(true);
    assert!(exit.clean, "{exit:?}");
    assert!(rest.is_empty());
    assert!(region_files(dir.path()).is_empty(), "region removed");
}

/// (b) SIGKILL mid-stream: the host gets PeerDied well under a second later.
#[test]
fn killed_child_is_reported_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let mut chan = ProcessChannel::<Req, Resp>::spawn(child("echo"), &config_in(dir.path())).unwrap();
    let pid = chan.peer_pid();
    for i in 0..1000 {
        assert_eq!(chan.call(&req(i)).unwrap().pid, pid);
    }
    // Keep requests in flight while it dies.
    for i in 0..100 {
        chan.send(&req(i)).unwrap();
    }
    kill9(pid);
    let killed_at = Instant::now();
    let err = loop {
        match chan.recv() {
            Ok(_) => assert!(killed_at.elapsed() < Duration::from_secs(5)),
            Err(e) => break e,
        }
    };
    let noticed = killed_at.elapsed();
    eprintln!("SIGKILL noticed after {noticed:?}: {err}");
    match &err {
        IpcError::PeerDied { pid: p, detail } => {
            assert_eq!(*p, pid);
            assert!(detail.contains("SIGKILL"), "{detail}");
        }
        other => panic!("expected PeerDied, got {other}"),
    }
    assert!(noticed < Duration::from_millis(500), "{noticed:?}");
    // Sticky, and sends fail too.
    assert!(matches!(chan.send(&req(0)), Err(IpcError::PeerDied { .. })));
    drop(chan);
    assert!(region_files(dir.path()).is_empty());
}

/// The exit of a killed child wakes a host that waits for a reply at once,
/// although its periodic checks are 10 s apart (Linux: the exit is watched
/// through a pidfd).
#[cfg(target_os = "linux")]
#[test]
fn a_watched_exit_wakes_a_waiting_host_between_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let config = IpcConfig {
        wait: WaitPolicy {
            check_interval: SLOW_CHECKS,
            ..WaitPolicy::default()
        },
        ..config_in(dir.path())
    };
    let mut chan = ProcessChannel::<Req, Resp>::spawn(child("stall"), &config).unwrap();
    let pid = chan.peer_pid();
    chan.send(&req(0)).unwrap();
    // Long enough for the host to be asleep on the futex.
    let killer = kill9_after(pid, Duration::from_millis(300));
    let err = chan.recv().expect_err("the stalled child never answers");
    let noticed = killer.join().unwrap().elapsed();
    eprintln!("exit noticed {noticed:?} after the kill: {err}");
    assert!(matches!(err, IpcError::PeerDied { pid: p, .. } if p == pid), "{err}");
    assert!(noticed < Duration::from_secs(2), "{noticed:?}");
}

/// A host blocked on a full request ring notices the death too.
#[test]
fn death_is_noticed_while_waiting_for_room() {
    let dir = tempfile::tempdir().unwrap();
    let config = IpcConfig {
        region: RegionConfig {
            capacity: 8,
            ..RegionConfig::default()
        },
        ..config_in(dir.path())
    };
    let mut chan = ProcessChannel::<Req, Resp>::spawn(child("stall"), &config).unwrap();
    let pid = chan.peer_pid();
    let killer = kill9_after(pid, Duration::from_millis(300));
    let err = (0..100).find_map(|i| chan.send(&req(i)).err()).unwrap();
    let killed_at = killer.join().unwrap();
    let noticed = killed_at.elapsed();
    assert!(matches!(err, IpcError::PeerDied { .. }), "{err}");
    assert!(noticed < Duration::from_millis(500), "{noticed:?}");
}

#[test]
fn send_timeout_on_a_stalled_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let config = IpcConfig {
        region: RegionConfig {
            capacity: 4,
            ..RegionConfig::default()
        },
        send_timeout: Some(Duration::from_millis(100)),
        ..config_in(dir.path())
    };
    let mut chan = ProcessChannel::<Req, Resp>::spawn(child("stall"), &config).unwrap();
    let err = (0..100).find_map(|i| chan.send(&req(i)).err()).unwrap();
    assert!(matches!(err, IpcError::Timeout { .. }), "{err}");
    // Dropping the channel kills the stalled child (it ignores terminate).
    let t = Instant::now();
    drop(chan);
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn startup_failures_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let config = IpcConfig {
        ready_timeout: Duration::from_millis(300),
        ..config_in(dir.path())
    };
    // Exits without ever attaching.
    let err = ProcessChannel::<Req, Resp>::spawn(SpawnCommand::new("true"), &config).unwrap_err();
    assert!(
        matches!(&err, IpcError::PeerDied { detail, .. } if detail.contains("before it was ready")),
        "{err}"
    );
    // Never attaches.
    let t = Instant::now();
    let err = ProcessChannel::<Req, Resp>::spawn(SpawnCommand::new("sleep").arg("30"), &config).unwrap_err();
    assert!(matches!(err, IpcError::Timeout { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3));
    // Does not exist.
    let err = ProcessChannel::<Req, Resp>::spawn(SpawnCommand::new("/nonexistent/kernel"), &config).unwrap_err();
    assert!(matches!(err, IpcError::Spawn { .. }), "{err}");
    assert!(region_files(dir.path()).is_empty(), "{:?}", region_files(dir.path()));
    // Not started as a kernel process.
    assert!(matches!(
        IpcContext::<Req, Resp>::from_env(),
        Err(IpcError::NotAKernelProcess { .. })
    ));
}

#[test]
fn handler_failure_is_reported_with_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut chan = ProcessChannel::<Req, Resp>::spawn(child("fail-at-3"), &config_in(dir.path())).unwrap();
    for i in 0..3 {
        chan.call(&req(i)).unwrap();
    }
    let err = chan.call(&req(3)).unwrap_err();
    match err {
        IpcError::KernelFailed { reason, .. } => assert_eq!(reason, "cannot handle request 3"),
        other => panic!("expected KernelFailed, got {other}"),
    }
}

/// A kernel process that runs on its own and is attached by name.
#[test]
fn attach_by_name() {
    let name = format!("ipc-test-attach-{}", std::process::id());
    let mut server = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "server")
        .env(NAME_ENV, &name)
        .spawn()
        .unwrap();
    let path = ipc::region_path(&name).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chan = loop {
        match ProcessChannel::<Req, Resp>::attach(&name, &IpcConfig::default()) {
            Ok(c) => break c,
            Err(IpcError::NotFound { .. }) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(chan.peer_pid(), server.id());
    for i in 0..100 {
        assert_eq!(chan.call(&req(i)).unwrap().value, 2 * i + 1);
    }
    // A second host cannot attach.
    assert!(matches!(
        ProcessChannel::<Req, Resp>::attach(&name, &IpcConfig::default()),
        Err(IpcError::AlreadyAttached { .. })
    ));
    let (exit, _) = chan.terminate(true);
    assert!(exit.clean, "{exit:?}");
    assert!(server.wait().unwrap().success());
    assert!(!path.exists(), "the creating kernel removed its region");
}

/// A frozen kernel (SIGSTOP) still has a pid but no heartbeat: the host calls
/// it unresponsive once the heartbeat timeout has passed.
#[cfg(target_os = "linux")]
#[test]
fn stopped_kernel_is_unresponsive() {
    let dir = tempfile::tempdir().unwrap();
    let config = IpcConfig {
        region: RegionConfig {
            heartbeat_interval: Duration::from_millis(10),
            heartbeat_timeout: Some(Duration::from_millis(200)),
            ..RegionConfig::default()
        },
        ..config_in(dir.path())
    };
    let mut chan = ProcessChannel::<Req, Resp>::spawn(child("echo"), &config).unwrap();
    chan.call(&req(0)).unwrap();
    let pid = chan.peer_pid();
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    // The signal takes effect asynchronously: wait until it has.
    while !proc_state(pid).is_some_and(|s| s == 'T' || s == 't') {
        std::thread::sleep(Duration::from_millis(1));
    }
    let stopped_at = Instant::now();
    chan.send(&req(1)).unwrap();
    let err = chan.recv().unwrap_err();
    let noticed = stopped_at.elapsed();
    assert!(matches!(err, IpcError::PeerUnresponsive { .. }), "{err}");
    assert!(noticed >= Duration::from_millis(150), "{noticed:?}");
    assert!(noticed < Duration::from_secs(2), "{noticed:?}");
    // Dropping the channel kills the stopped child (SIGKILL works on it).
    let t = Instant::now();
    drop(chan);
    assert!(t.elapsed() < Duration::from_secs(2));
}

/// The state letter of `/proc/<pid>/stat`, `None` once the process is gone.
#[cfg(target_os = "linux")]
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

#[cfg(target_os = "linux")]
fn process_gone(pid: u32) -> bool {
    proc_state(pid).is_none_or(|s| s == 'Z' || s == 'X')
}

/// The host dies by SIGKILL: its kernel process notices (its watch of the
/// host's exit: its checks are 10 s apart) and exits on its own, reporting
/// PeerDied; the region the dead host left behind is stale and a new region
/// may be created over it.
#[cfg(target_os = "linux")]
#[test]
fn kernel_exits_when_its_host_dies_and_the_stale_region_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("kernel-report");
    let pid_file = dir.path().join("kernel-pid");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "host-crash")
        .env(COUNT_ENV, dir.path())
        .env(MARKER_ENV, &marker)
        .env(NAME_ENV, &pid_file)
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}");
    let host_died = Instant::now();
    let kernel: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    while !process_gone(kernel) {
        assert!(
            host_died.elapsed() < Duration::from_secs(2),
            "orphaned kernel keeps running"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!("kernel exited {:?} after its host died", host_died.elapsed());
    let report = std::fs::read_to_string(&marker).unwrap();
    assert!(report.contains("PeerDied"), "{report}");
    // The dead host's region is still there: stale, so it can be replaced.
    let stale = region_files(dir.path());
    assert_eq!(stale.len(), 1, "{stale:?}");
    let fresh = Region::create(&stale[0], Role::Host, &RegionConfig::default()).unwrap();
    assert_eq!(fresh.end_pid(Role::Host), std::process::id());
    drop(fresh);
    assert!(region_files(dir.path()).is_empty());
}

/// A runtime with `spec` launched and activated as `id` (inside a Tokio runtime).
fn launched(spec: dotcompute::KernelSpec, id: &str) -> RingKernelRuntime {
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate(id).unwrap();
    rt
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// (c) Through the runtime: launch, activate, calls, deactivate/reactivate,
/// terminate; the child exits cleanly and the region file is removed.
#[test]
fn runtime_lifecycle_with_a_process_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("child-exited-cleanly");
    let regions = dir.path().join("regions");
    std::fs::create_dir(&regions).unwrap();
    let spec = ipc::process_kernel_builder::<Req, Resp>(
        "proc_echo",
        child("echo-marker").env(MARKER_ENV, &marker),
        config_in(&regions),
    )
    .unwrap()
    .build()
    .unwrap();
    tokio_rt().block_on(async {
        let rt = launched(spec, "proc_echo");
        let mut child_pid = 0;
        for i in 0..200 {
            let r = req(i);
            let id = r.header.message_id;
            let resp: Resp = rt.call("proc_echo", r).await.unwrap();
            assert_eq!((resp.seq, resp.value), (i, 2 * i + 1));
            assert_eq!(resp.correlation_id(), Some(id));
            child_pid = resp.pid;
        }
        assert_ne!(child_pid, std::process::id());
        assert_eq!(region_files(&regions).len(), 1);

        // Deactivated: messages wait in the input queue.
        rt.deactivate("proc_echo").unwrap();
        for i in 1000..1010 {
            rt.send("proc_echo", req(i)).await.unwrap();
        }
        let quiet = rt
            .receive_timeout::<Resp>("proc_echo", Duration::from_millis(100))
            .await;
        assert!(matches!(quiet, Err(Error::QueueTimeout { .. })), "{quiet:?}");
        rt.reactivate("proc_echo").unwrap();
        for i in 1000..1010 {
            let resp: Resp = rt.receive("proc_echo").await.unwrap();
            assert_eq!(resp.seq, i);
            assert_eq!(resp.pid, child_pid, "same process across deactivation");
        }

        // The context counts a send just after the reply is queued, so the
        // host may see the last reply a moment before the counter.
        let deadline = Instant::now() + Duration::from_secs(5);
        let telemetry = loop {
            let t = rt.telemetry("proc_echo").unwrap();
            if t.messages_sent == 210 || Instant::now() > deadline {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        assert_eq!(telemetry.messages_received, 210);
        assert_eq!(telemetry.messages_sent, 210);
        assert_eq!(telemetry.errors, 0);

        let report = rt.terminate("proc_echo").await.unwrap();
        assert!(!report.forced, "{report:?}");
        assert_eq!(report.previous_state, KernelState::Active);
        assert_eq!(report.failure, None);
        assert!(rt.kernel_ids().is_empty());
        rt.shutdown().await;
    });
    assert_eq!(std::fs::read(&marker).unwrap(), b"clean", "child left serve() with Ok");
    assert!(region_files(&regions).is_empty(), "region removed");
}

/// Through the runtime: the pump sleeps on one futex for a reply *and* its
/// input queue. With a request left unanswered (the kernel answers even
/// `seq` only), a later request is still moved at once, not after the pump's
/// sleep ends (`park` 1 s and `check_interval` 10 s here: the old pump slept
/// on the reply ring alone for `park`); a terminate wakes it too.
#[test]
fn runtime_pump_wakes_for_a_request_while_a_reply_is_outstanding() {
    let config = IpcConfig {
        wait: WaitPolicy {
            park: Duration::from_secs(1),
            check_interval: Duration::from_secs(10),
            ..WaitPolicy::default()
        },
        ..IpcConfig::default()
    };
    let spec = ipc::process_kernel_builder::<Req, Resp>("proc_even", child("even-only"), config)
        .unwrap()
        .build()
        .unwrap();
    tokio_rt().block_on(async {
        let rt = launched(spec, "proc_even");
        let first: Resp = rt.call("proc_even", req(0)).await.unwrap();
        assert_eq!(first.seq, 0);
        for round in 0..3u64 {
            // Unanswered: the pump now waits for a reply that never comes.
            rt.send("proc_even", req(2 * round + 1)).await.unwrap();
            // Past its polling phase (250 µs): asleep.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let asked = Instant::now();
            rt.send("proc_even", req(2 * round + 2)).await.unwrap();
            let resp = rt
                .receive_timeout::<Resp>("proc_even", Duration::from_millis(600))
                .await
                .unwrap_or_else(|e| {
                    panic!("round {round}: no reply within 600 ms (pump slept through the request?): {e}")
                });
            assert_eq!(resp.seq, 2 * round + 2);
            assert!(asked.elapsed() < Duration::from_millis(600));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let asked = Instant::now();
        let report = rt.terminate("proc_even").await.unwrap();
        assert_eq!(report.failure, None, "{report:?}");
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "terminate waited {:?}: the sleeping pump was not woken",
            asked.elapsed()
        );
        rt.shutdown().await;
    });
}

/// (b) through the runtime: the child is SIGKILLed mid-stream (requests and
/// replies flowing); the host's receive reports `KernelFailed` and the kernel
/// is `Failed` well under a second later.
///
/// (While the kernel's output queue is full and nobody receives, its pump is
/// blocked in the runtime's `send` and notices the death only once the host
/// makes room; see the module docs of `ipc::process_kernel`.)
#[test]
fn runtime_kernel_fails_when_its_process_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ipc::process_kernel_builder::<Req, Resp>("proc_victim", child("echo"), config_in(dir.path()))
        .unwrap()
        .build()
        .unwrap();
    tokio_rt().block_on(async {
        let rt = launched(spec, "proc_victim");
        let first: Resp = rt.call("proc_victim", req(0)).await.unwrap();
        // Mid-stream: requests keep flowing while it dies.
        let sender = {
            let rt = rt.clone();
            tokio::spawn(async move {
                for i in 1..100_000 {
                    if rt.send("proc_victim", req(i)).await.is_err() {
                        return i;
                    }
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                100_000
            })
        };
        // ... while this task keeps receiving; the child dies after 2000 replies.
        let mut received = 0u64;
        let mut killed_at = None;
        let err = loop {
            match rt.receive_timeout::<Resp>("proc_victim", Duration::from_secs(5)).await {
                Ok(resp) => {
                    received += 1;
                    assert_eq!(resp.seq, received, "replies in order");
                    if received == 2_000 {
                        kill9(first.pid);
                        killed_at = Some(Instant::now());
                    }
                }
                Err(e) => break e,
            }
        };
        let noticed = killed_at.expect("killed mid-stream").elapsed();
        eprintln!("runtime reported the kernel Failed {noticed:?} after SIGKILL ({received} replies)");
        assert!(noticed < Duration::from_millis(500), "{noticed:?}");
        assert_eq!(rt.kernel_state("proc_victim").unwrap(), KernelState::Failed);
        match &err {
            Error::KernelFailed { kernel, error } => {
                assert_eq!(kernel, "proc_victim");
                let text = error.to_string();
                assert!(text.contains("died") && text.contains("SIGKILL"), "{text}");
            }
            other => panic!("expected KernelFailed, got {other:?}"),
        }
        let stopped_at = sender.await.unwrap();
        assert!(stopped_at < 100_000, "sends are refused once the kernel failed");
        // Issue 16 row 14: the requests handed to the child and never
        // answered are counted as lost, and named in the failure.
        let t = rt.telemetry("proc_victim").unwrap();
        let Error::KernelFailed { error, .. } = &err else {
            unreachable!("checked above")
        };
        assert_eq!(t.last_error.as_ref(), Some(error), "telemetry keeps the same error");
        let lost = match error.downcast_ref::<IpcError>() {
            Some(IpcError::RequestsLost { lost, cause }) => {
                assert!(matches!(**cause, IpcError::PeerDied { .. }), "{cause:?}");
                *lost
            }
            other => panic!("expected RequestsLost, got {other:?}"),
        };
        eprintln!("{lost} requests were in flight when the child died");
        assert!(lost > 0);
        assert_eq!(t.messages_lost, lost);
        // Every request the kernel took is accounted for: answered (the
        // call, then the `received` replies), lost with the child, or
        // refused on the way back (discarded).
        assert_eq!(
            t.messages_received,
            1 + received + t.messages_lost + t.messages_discarded,
            "{t:?}"
        );
        rt.shutdown().await;
    });
    assert!(region_files(dir.path()).is_empty());
}

/// Issue 16 row 15: a hostile child's failure text (NULs, terminal escapes,
/// a kilobyte) reaches the host's error escaped and cut short.
#[test]
fn a_hostile_failure_text_is_escaped_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ipc::process_kernel_builder::<Req, Resp>("proc_hostile", child("fail-hostile"), config_in(dir.path()))
        .unwrap()
        .build()
        .unwrap();
    tokio_rt().block_on(async {
        let rt = launched(spec, "proc_hostile");
        rt.send("proc_hostile", req(0)).await.unwrap();
        let err = rt.receive::<Resp>("proc_hostile").await.unwrap_err();
        let text = err.to_string();
        assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
        assert!(text.contains("bad\\u{0}\\u{1b}[2J\\r\\n"), "{text}");
        assert!(
            text.len() < 600 && text.contains("more bytes cut"),
            "{} bytes: {text}",
            text.len()
        );
        let last = rt.telemetry("proc_hostile").unwrap().last_error.unwrap().to_string();
        assert!(!last.chars().any(|c| c.is_control()) && last.len() < 600, "{last:?}");
        rt.shutdown().await;
    });
}

#[test]
fn runtime_reports_the_handler_failure_text() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ipc::process_kernel_builder::<Req, Resp>("proc_fail", child("fail-at-3"), config_in(dir.path()))
        .unwrap()
        .build()
        .unwrap();
    tokio_rt().block_on(async {
        let rt = launched(spec, "proc_fail");
        for i in 0..3 {
            let _: Resp = rt.call("proc_fail", req(i)).await.unwrap();
        }
        rt.send("proc_fail", req(3)).await.unwrap();
        let err = rt.receive::<Resp>("proc_fail").await.unwrap_err();
        match &err {
            Error::KernelFailed { error, .. } => {
                assert!(error.to_string().contains("cannot handle request 3"), "{error}")
            }
            other => panic!("expected KernelFailed, got {other:?}"),
        }
        assert_eq!(rt.kernel_state("proc_fail").unwrap(), KernelState::Failed);
        rt.shutdown().await;
    });
}

/// With a restart policy, a killed process is replaced by a new one.
#[test]
fn runtime_restart_spawns_a_new_process() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ipc::process_kernel_builder::<Req, Resp>("proc_phoenix", child("echo"), config_in(dir.path()))
        .unwrap()
        .restart(RestartPolicy::OnFailure {
            max_restarts: 1,
            window: Duration::from_secs(60),
        })
        .build()
        .unwrap();
    tokio_rt().block_on(async {
        let rt = launched(spec, "proc_phoenix");
        let first: Resp = rt.call("proc_phoenix", req(0)).await.unwrap();
        kill9(first.pid);
        let mut second = None;
        for i in 1..200 {
            if let Ok(r) = rt
                .call_timeout::<Req, Resp>("proc_phoenix", req(i), Duration::from_millis(200))
                .await
            {
                second = Some(r);
                break;
            }
        }
        let second = second.expect("the restarted kernel answers");
        assert_ne!(second.pid, first.pid, "a new process");
        assert_eq!(rt.kernel_state("proc_phoenix").unwrap(), KernelState::Active);
        assert_eq!(rt.telemetry("proc_phoenix").unwrap().restarts, 1);
        rt.terminate("proc_phoenix").await.unwrap();
        rt.shutdown().await;
    });
    assert!(region_files(dir.path()).is_empty());
}

/// Terminate with drain: every request sent before is handled and its reply
/// delivered; nothing is discarded.
#[test]
fn runtime_drain_terminate_delivers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ipc::process_kernel_builder::<Req, Resp>("proc_drain", child("echo"), config_in(dir.path()))
        .unwrap()
        .build()
        .unwrap();
    tokio_rt().block_on(async {
        let rt = launched(spec, "proc_drain");
        let _: Resp = rt.call("proc_drain", req(0)).await.unwrap();
        for i in 1..=500 {
            rt.send("proc_drain", req(i)).await.unwrap();
        }
        let report = rt
            .terminate_with(
                "proc_drain",
                TerminateOptions {
                    drain: true,
                    timeout: Duration::from_secs(10),
                },
            )
            .await
            .unwrap();
        assert!(!report.forced, "{report:?}");
        assert_eq!(report.discarded_input, 0);
        assert_eq!(report.unread_output, 500, "{report:?}");
        rt.shutdown().await;
    });
}

#[test]
fn runtime_attach_by_name() {
    let name = format!("ipc-test-rt-attach-{}", std::process::id());
    let mut server = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "server")
        .env(NAME_ENV, &name)
        .spawn()
        .unwrap();
    let path = ipc::region_path(&name).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "server never created its region");
        std::thread::sleep(Duration::from_millis(5));
    }
    let spec = ipc::process_kernel::<Req, Resp>("proc_attached", ProcessCommand::attach(&name)).unwrap();
    tokio_rt().block_on(async {
        let rt = launched(spec, "proc_attached");
        let resp: Resp = rt.call("proc_attached", req(7)).await.unwrap();
        assert_eq!((resp.value, resp.pid), (15, server.id()));
        rt.terminate("proc_attached").await.unwrap();
        rt.shutdown().await;
    });
    assert!(server.wait().unwrap().success());
    assert!(!path.exists());
}

/// The process tier hands refused messages back too, and its blocking sends
/// honour the kernel's `send_timeout` (issue 10 and issue 14): a full queue
/// under Block with a timeout, then under Reject, single and batched.
#[test]
fn process_kernel_refusals_hand_back_and_honour_send_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_millis(50);
    for strategy in [dotcompute::Backpressure::Block, dotcompute::Backpressure::Reject] {
        let spec = ipc::process_kernel_builder::<Req, Resp>("proc_full", child("echo"), config_in(dir.path()))
            .unwrap()
            .input_queue_size(2)
            .backpressure(strategy)
            .send_timeout(timeout)
            .build()
            .unwrap();
        let rt = RingKernelRuntime::new();
        rt.launch_spec(spec).unwrap();
        let h = rt.handle::<Req, Resp>("proc_full").unwrap();
        let e = h.send_blocking(req(100)).unwrap_err();
        assert!(e.is_not_active(), "{e:?}");
        assert_eq!(e.into_message().seq, 100);
        rt.activate("proc_full").unwrap();
        assert_eq!(h.call_blocking(req(1)).unwrap().seq, 1);
        rt.deactivate("proc_full").unwrap();
        h.try_send(req(2)).unwrap();
        h.try_send(req(3)).unwrap();
        let blocks = strategy == dotcompute::Backpressure::Block;
        let start = Instant::now();
        let e = h.send_blocking(req(4)).unwrap_err();
        assert!(if blocks { e.is_timeout() } else { e.is_full() }, "{e:?}");
        assert_eq!(e.into_message().seq, 4);
        let e = h.send_batch_blocking(vec![req(5), req(6)]).unwrap_err();
        assert_eq!(e.into_message().iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 6]);
        let e = futures::executor::block_on(h.send(req(7))).unwrap_err();
        assert_eq!(e.into_message().seq, 7);
        let took = start.elapsed();
        if blocks {
            assert!(took >= 3 * timeout && took < Duration::from_secs(10), "{took:?}");
        }
        rt.reactivate("proc_full").unwrap();
        assert_eq!(h.receive_blocking().unwrap().seq, 2);
        assert_eq!(h.receive_blocking().unwrap().seq, 3);
        let t = h.telemetry();
        assert_eq!(t.messages_rejected, 3, "{t:?}");
        rt.shutdown_blocking();
    }
    assert!(region_files(dir.path()).is_empty());
}

// ---- blocking hosts relay for the kernel (`ipc::relay`) -------------------

/// Runs `f` on a thread and fails the test if it has not returned within
/// `limit` (a relay that waited on its own host would hang, not fail).
fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: not done within {limit:?}"))
}

/// Waits up to 5 s for `rt`'s kernel `id` to show `want` messages sent and
/// every queue count settled; returns the telemetry it saw last.
fn settled(rt: &RingKernelRuntime, id: &str, want: u64) -> dotcompute::KernelTelemetry {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let t = rt.telemetry(id).unwrap();
        if (t.messages_sent == want && t.output_queue.dequeued == want) || Instant::now() > deadline {
            return t;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A blocking host relays its own round trips while an async task sends to
/// the same kernel: every reply arrives once, each sender's in its order,
/// and the counts are exact (the relay moves messages through the kernel's
/// own queues and context, whichever thread runs it).
#[test]
fn blocking_host_relays_in_order_beside_an_async_sender() {
    const ROUND_TRIPS: u64 = 3_000;
    const TELLS: u64 = 3_000;
    const TOLD: u64 = 1 << 40;
    let spec = ipc::process_kernel::<Req, Resp>("proc_mixed", child("echo")).unwrap();
    let tokio = tokio_rt();
    let rt = tokio.block_on(async { launched(spec, "proc_mixed") });
    let teller = {
        let rt = rt.clone();
        tokio.spawn(async move {
            for i in 0..TELLS {
                rt.send("proc_mixed", req(TOLD + i)).await.unwrap();
                if i % 16 == 0 {
                    tokio::time::sleep(Duration::from_micros(50)).await;
                }
            }
        })
    };
    let h = rt.handle::<Req, Resp>("proc_mixed").unwrap();
    let seen = within(Duration::from_secs(60), "mixed relay", move || {
        let mut seen = Vec::new();
        for i in 0..ROUND_TRIPS {
            h.send_blocking(req(i)).unwrap();
            seen.push(h.receive_blocking_timeout(Duration::from_secs(10)).unwrap().seq);
        }
        while (seen.len() as u64) < ROUND_TRIPS + TELLS {
            seen.push(h.receive_blocking_timeout(Duration::from_secs(10)).unwrap().seq);
        }
        seen
    });
    tokio.block_on(teller).unwrap();
    let (told, asked): (Vec<u64>, Vec<u64>) = seen.into_iter().partition(|s| *s >= TOLD);
    assert_eq!(
        asked,
        (0..ROUND_TRIPS).collect::<Vec<_>>(),
        "the host's replies, once each, in order"
    );
    assert_eq!(
        told,
        (TOLD..TOLD + TELLS).collect::<Vec<_>>(),
        "the async sender's, once each, in order"
    );
    let n = ROUND_TRIPS + TELLS;
    let t = settled(&rt, "proc_mixed", n);
    assert_eq!(
        (t.messages_received, t.messages_processed, t.messages_sent),
        (n, n, n),
        "{t:?}"
    );
    assert_eq!((t.input_queue.enqueued, t.input_queue.dequeued), (n, n), "{t:?}");
    assert_eq!((t.output_queue.enqueued, t.output_queue.dequeued), (n, n), "{t:?}");
    assert_eq!((t.messages_dropped, t.messages_lost), (0, 0), "{t:?}");
    assert!(t.input_queue.is_consistent() && t.output_queue.is_consistent(), "{t:?}");
    tokio.block_on(async {
        assert_eq!(rt.terminate("proc_mixed").await.unwrap().failure, None);
        rt.shutdown().await;
    });
}

/// A blocking host that only sends, and a reply queue of two: the replies
/// still reach the output queue though nobody receives (the kernel's thread
/// takes the relay back when the host's calls stop), and a host receive
/// that relays never waits for room it would have to make itself.
#[test]
fn blocking_sends_are_answered_without_a_receive_and_a_full_reply_queue_stalls_no_host() {
    const N: u64 = 200;
    let spec = ipc::process_kernel_builder::<Req, Resp>("proc_tells", child("echo"), IpcConfig::default())
        .unwrap()
        .input_queue_size(1024)
        .output_queue_size(2)
        .build()
        .unwrap();
    let tokio = tokio_rt();
    let rt = tokio.block_on(async { launched(spec, "proc_tells") });
    let h = rt.handle::<Req, Resp>("proc_tells").unwrap();
    let sender = h.clone();
    within(Duration::from_secs(30), "blocking sends", move || {
        for i in 0..N {
            sender.send_blocking(req(i)).unwrap();
        }
    });
    // Nobody receives: the first two replies fill the output queue.
    let deadline = Instant::now() + Duration::from_secs(2);
    while rt.telemetry("proc_tells").unwrap().output_queue.enqueued < 2 {
        assert!(
            Instant::now() < deadline,
            "replies did not reach the output queue without a receive"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let seen = within(Duration::from_secs(30), "blocking receives", move || {
        (0..N)
            .map(|_| h.receive_blocking_timeout(Duration::from_secs(5)).unwrap().seq)
            .collect::<Vec<_>>()
    });
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    let t = settled(&rt, "proc_tells", N);
    assert_eq!((t.output_queue.enqueued, t.output_queue.dequeued), (N, N), "{t:?}");
    assert_eq!((t.messages_dropped, t.messages_lost), (0, 0), "{t:?}");
    tokio.block_on(async {
        assert_eq!(rt.terminate("proc_tells").await.unwrap().failure, None);
        rt.shutdown().await;
    });
}

/// A blocking receive that relays while nothing is in flight is woken by a
/// terminate at once, and the kernel still ends cleanly on its own thread.
#[test]
fn terminate_wakes_a_blocking_receive_that_relays() {
    let spec = ipc::process_kernel::<Req, Resp>("proc_idle_host", child("echo")).unwrap();
    let tokio = tokio_rt();
    let rt = tokio.block_on(async { launched(spec, "proc_idle_host") });
    let h = rt.handle::<Req, Resp>("proc_idle_host").unwrap();
    h.send_blocking(req(7)).unwrap();
    assert_eq!(h.receive_blocking().unwrap().seq, 7);
    let waiting = std::thread::spawn(move || {
        let r = h.receive_blocking();
        (r.map(|m| m.seq), Instant::now())
    });
    std::thread::sleep(Duration::from_millis(200));
    let asked = Instant::now();
    let report = tokio.block_on(rt.terminate("proc_idle_host")).unwrap();
    let (got, woke) = waiting.join().unwrap();
    assert!(matches!(got, Err(Error::KernelTerminated { .. })), "{got:?}");
    assert!(
        woke.saturating_duration_since(asked) < Duration::from_secs(1),
        "the receive returned {:?} after the terminate",
        woke.saturating_duration_since(asked)
    );
    assert_eq!(report.failure, None, "{report:?}");
    assert!(!report.forced, "{report:?}");
    tokio.block_on(rt.shutdown());
}

/// The process dies while a blocking host relays in its receive: the host
/// gets `KernelFailed` soon after, and the kernel's own thread counts the
/// requests lost with the process (the host handed the end back to it).
#[test]
fn a_process_killed_under_a_relaying_receive_fails_the_kernel_with_its_lost_requests() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ipc::process_kernel_builder::<Req, Resp>("proc_odd", child("even-only"), config_in(dir.path()))
        .unwrap()
        .build()
        .unwrap();
    let tokio = tokio_rt();
    let rt = tokio.block_on(async { launched(spec, "proc_odd") });
    let h = rt.handle::<Req, Resp>("proc_odd").unwrap();
    h.send_blocking(req(0)).unwrap();
    let pid = h.receive_blocking().unwrap().pid;
    // Taken by the process, never answered.
    h.send_blocking(req(1)).unwrap();
    h.send_blocking(req(3)).unwrap();
    let receiver = std::thread::spawn(move || {
        let r = h.receive_blocking_timeout(Duration::from_secs(20));
        (r.map(|m| m.seq), Instant::now())
    });
    std::thread::sleep(Duration::from_millis(100));
    kill9(pid);
    let killed = Instant::now();
    let (got, woke) = receiver.join().unwrap();
    match &got {
        Err(Error::KernelFailed { error, .. }) => {
            assert!(
                matches!(
                    error.downcast_ref::<IpcError>(),
                    Some(IpcError::RequestsLost { lost: 2, .. })
                ),
                "{error}"
            );
        }
        other => panic!("expected KernelFailed naming 2 lost requests, got {other:?}"),
    }
    let noticed = woke.saturating_duration_since(killed);
    assert!(noticed < Duration::from_secs(2), "noticed {noticed:?} after SIGKILL");
    let t = rt.telemetry("proc_odd").unwrap();
    assert_eq!(t.messages_lost, 2, "{t:?}");
    assert_eq!(rt.kernel_state("proc_odd").unwrap(), KernelState::Failed);
    tokio.block_on(rt.shutdown());
}

/// `call_blocking` relays its own exchange too: each call gets the reply
/// correlated with its request, an output sent before stays in the output
/// queue for `receive`, and the counts are exact.
#[test]
fn blocking_calls_relay_and_leave_other_outputs_queued() {
    let spec = ipc::process_kernel::<Req, Resp>("proc_calls", child("echo")).unwrap();
    let tokio = tokio_rt();
    let rt = tokio.block_on(async { launched(spec, "proc_calls") });
    let h = rt.handle::<Req, Resp>("proc_calls").unwrap();
    h.send_blocking(req(1_000)).unwrap();
    for i in 0..500 {
        let r = req(i);
        let id = r.header.message_id;
        let resp = h.call_blocking_timeout(r, Duration::from_secs(10)).unwrap();
        assert_eq!((resp.seq, resp.correlation_id()), (i, Some(id)));
    }
    assert_eq!(h.receive_blocking_timeout(Duration::from_secs(10)).unwrap().seq, 1_000);
    let t = settled(&rt, "proc_calls", 501);
    assert_eq!((t.messages_received, t.messages_sent), (501, 501), "{t:?}");
    assert_eq!((t.output_queue.enqueued, t.output_queue.dequeued), (501, 501), "{t:?}");
    assert!(t.output_queue.is_consistent(), "{t:?}");
    tokio.block_on(async {
        assert_eq!(rt.terminate("proc_calls").await.unwrap().failure, None);
        rt.shutdown().await;
    });
}

/// While a host sleeps relaying in a receive, the kernel's thread naps
/// long (`check_interval`, 10 s here); the host nudges it when it leaves,
/// so a message from another sender right after is relayed at once, not
/// after the nap.
#[test]
fn a_host_leaving_a_sleeping_receive_hands_the_relay_back_at_once() {
    let config = IpcConfig {
        wait: WaitPolicy {
            check_interval: Duration::from_secs(10),
            ..WaitPolicy::default()
        },
        ..IpcConfig::default()
    };
    let spec = ipc::process_kernel_builder::<Req, Resp>("proc_nap", child("echo"), config)
        .unwrap()
        .build()
        .unwrap();
    let tokio = tokio_rt();
    let rt = tokio.block_on(async { launched(spec, "proc_nap") });
    let h = rt.handle::<Req, Resp>("proc_nap").unwrap();
    h.send_blocking(req(1)).unwrap();
    assert_eq!(h.receive_blocking().unwrap().seq, 1);
    // Asleep in the relay (past its polling phase) until the timeout.
    let quiet = h.receive_blocking_timeout(Duration::from_millis(300));
    assert!(matches!(quiet, Err(Error::QueueTimeout { .. })), "{quiet:?}");
    let sent = Instant::now();
    tokio.block_on(rt.send("proc_nap", req(2))).unwrap();
    while rt.telemetry("proc_nap").unwrap().output_queue.enqueued < 2 {
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "the reply to an async send waited for the kernel's thread's long nap"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(tokio.block_on(rt.receive::<Resp>("proc_nap")).unwrap().seq, 2);
    tokio.block_on(async {
        assert_eq!(rt.terminate("proc_nap").await.unwrap().failure, None);
        rt.shutdown().await;
    });
}

/// Two threads blocked in `receive_blocking` and a third sending: one
/// receiver relays, the other waits on the output queue; every reply
/// reaches exactly one of them.
#[test]
fn two_blocking_receivers_share_the_replies() {
    const N: u64 = 4_000;
    let spec = ipc::process_kernel::<Req, Resp>("proc_two", child("echo")).unwrap();
    let tokio = tokio_rt();
    let rt = tokio.block_on(async { launched(spec, "proc_two") });
    let h = rt.handle::<Req, Resp>("proc_two").unwrap();
    let taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let (h, taken) = (h.clone(), taken.clone());
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < N {
                    got.push(h.receive_blocking_timeout(Duration::from_secs(10)).unwrap().seq);
                }
                got
            })
        })
        .collect();
    within(Duration::from_secs(60), "blocking sends", move || {
        for i in 0..N {
            h.send_blocking(req(i)).unwrap();
        }
    });
    let mut all: Vec<u64> = receivers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>());
    tokio.block_on(async {
        assert_eq!(rt.terminate("proc_two").await.unwrap().failure, None);
        rt.shutdown().await;
    });
}

/// A process kernel linked to another kernel, fed by blocking sends (which
/// leave a linked kernel's replies to the kernel's thread): every reply
/// reaches the linked kernel in order, none through the host's output
/// queue.
#[test]
fn a_linked_process_kernel_fed_by_blocking_sends_forwards_every_reply() {
    const N: u64 = 2_000;
    let spec = ipc::process_kernel::<Req, Resp>("proc_linked", child("echo")).unwrap();
    let tokio = tokio_rt();
    let rt = tokio.block_on(async {
        let rt = RingKernelRuntime::new();
        rt.launch_spec(spec).unwrap();
        rt.launch_with(
            "collect",
            dotcompute::KernelConfig::default(),
            |mut ctx: dotcompute::KernelContext<Resp, Resp>| async move {
                loop {
                    let r = ctx.receive().await?;
                    ctx.send(r).await?;
                }
                #[allow(unreachable_code)]
                Ok::<(), Error>(())
            },
        )
        .unwrap();
        rt.link("proc_linked", "collect").unwrap();
        rt.activate("proc_linked").unwrap();
        rt.activate("collect").unwrap();
        rt
    });
    let h = rt.handle::<Req, Resp>("proc_linked").unwrap();
    let out = rt.handle::<Resp, Resp>("collect").unwrap();
    let seen = within(Duration::from_secs(60), "linked pipeline", move || {
        for i in 0..N {
            h.send_blocking(req(i)).unwrap();
        }
        (0..N)
            .map(|_| out.receive_blocking_timeout(Duration::from_secs(10)).unwrap().seq)
            .collect::<Vec<_>>()
    });
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    let t = rt.telemetry("proc_linked").unwrap();
    assert_eq!(t.messages_sent, N, "{t:?}");
    assert_eq!(
        t.output_queue.enqueued, 0,
        "nothing went through the host's output queue"
    );
    tokio.block_on(rt.shutdown());
}
