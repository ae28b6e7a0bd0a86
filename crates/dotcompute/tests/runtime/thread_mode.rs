use std::time::Duration;

use dotcompute::{
    BlockingContext, Error, ExecutionMode, KernelConfig, KernelSpec, KernelState, Message, RingKernelRuntime,
    RuntimeConfig,
};

use crate::common::{times_ten, Num};

fn blocking_times_ten(mut ctx: BlockingContext<Num, Num>) -> Result<(), Error> {
    // The handler really runs on its own OS thread.
    let name = std::thread::current().name().map(str::to_string).unwrap_or_default();
    assert!(name.starts_with("ring-kernel-"), "runs on {name:?}");
    loop {
        let m = ctx.receive()?;
        ctx.send(m.reply(Num::new(m.n * 10)))?;
    }
}

fn thread_spec(id: &str) -> KernelSpec {
    KernelSpec::builder::<Num, Num>(id)
        .blocking_handler(blocking_times_ten)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_kernel_has_the_same_lifecycle_and_api() {
    let rt = RingKernelRuntime::with_config(RuntimeConfig {
        terminate_timeout: Duration::from_secs(30),
    });
    rt.launch_spec(thread_spec("t")).await.unwrap();
    rt.activate("t").await.unwrap();
    for i in 0..100 {
        assert_eq!(rt.call::<Num, Num>("t", Num::new(i)).await.unwrap().n, i * 10);
    }
    rt.deactivate("t").await.unwrap();
    rt.send("t", Num::new(7)).await.unwrap();
    assert!(matches!(
        rt.receive_timeout::<Num>("t", Duration::from_millis(50)).await,
        Err(Error::QueueTimeout { .. })
    ));
    rt.reactivate("t").await.unwrap();
    assert_eq!(rt.receive::<Num>("t").await.unwrap().n, 70);
    let t = rt.telemetry("t").unwrap();
    assert_eq!(t.messages_received, 101);
    // Terminate wakes the thread blocked in receive: no forced abort.
    let report = rt.terminate("t").await.unwrap();
    assert!(!report.forced);
    assert_eq!(report.previous_state, KernelState::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_and_async_kernels_link_both_ways() {
    let rt = RingKernelRuntime::new();
    rt.launch_spec(thread_spec("thread")).await.unwrap();
    rt.launch_with("async", KernelConfig::default(), times_ten)
        .await
        .unwrap();
    rt.link("thread", "async").unwrap();
    rt.activate("thread").await.unwrap();
    rt.activate("async").await.unwrap();
    rt.send("thread", Num::new(3)).await.unwrap();
    assert_eq!(rt.receive::<Num>("async").await.unwrap().n, 300);
    rt.shutdown().await;
}

#[tokio::test]
async fn a_panicking_thread_kernel_fails_cleanly() {
    let rt = RingKernelRuntime::new();
    let spec = KernelSpec::builder::<Num, Num>("boom")
        .blocking_handler(|mut ctx: BlockingContext<Num, Num>| -> Result<(), Error> {
            let m = ctx.receive()?;
            panic!("thread kernel got {}", m.n);
        })
        .build()
        .unwrap();
    rt.launch_spec(spec).await.unwrap();
    rt.activate("boom").await.unwrap();
    rt.send("boom", Num::new(9)).await.unwrap();
    match rt.receive::<Num>("boom").await {
        Err(Error::KernelFailed { error, .. }) => assert!(error.contains("thread kernel got 9"), "{error}"),
        other => panic!("expected KernelFailed, got {other:?}"),
    }
    assert_eq!(rt.kernel_state("boom").unwrap(), KernelState::Failed);
}

#[tokio::test]
async fn handler_kind_and_mode_must_agree() {
    let err = KernelSpec::builder::<Num, Num>("x")
        .handler(times_ten)
        .config(KernelConfig {
            mode: ExecutionMode::Thread,
            ..Default::default()
        })
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfiguration { parameter: "mode", .. }),
        "{err:?}"
    );
    let err = thread_spec("y").with_config(KernelConfig::default()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfiguration { parameter: "mode", .. }),
        "{err:?}"
    );
}
