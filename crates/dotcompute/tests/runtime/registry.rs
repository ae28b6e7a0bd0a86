use dotcompute::{registry, ring_kernel, Backpressure, Error, KernelContext, KernelSpec, Message, RingKernelRuntime};

use crate::common::{times_ten, Num, Text};

#[ring_kernel(id = "test_registry_upper", input = Text, output = Text, queue_size = 8, backpressure = "reject")]
async fn upper(mut ctx: KernelContext<Text, Text>) -> Result<(), Error> {
    loop {
        let t = ctx.receive().await?;
        ctx.send(t.reply(Text::new(&t.s.to_uppercase()))).await?;
    }
}

// Types inferred from the argument; id defaults to the function name.
#[ring_kernel]
async fn test_registry_inferred(mut ctx: KernelContext<Num, Num>) -> Result<(), Error> {
    loop {
        let m = ctx.receive().await?;
        ctx.send(m.reply(Num::new(-m.n))).await?;
    }
}

// The same id twice: launching it must report both places.
#[ring_kernel(id = "test_registry_twice")]
async fn twice_a(_ctx: KernelContext<Num, Num>) {}
#[ring_kernel(id = "test_registry_twice")]
async fn twice_b(_ctx: KernelContext<Num, Num>) {}

#[tokio::test]
async fn macro_registered_kernels_launch_by_id_with_their_config() {
    let rt = RingKernelRuntime::new();
    rt.launch("test_registry_upper").unwrap();
    rt.activate("test_registry_upper").unwrap();
    let r: Text = rt.call("test_registry_upper", Text::new("abc")).await.unwrap();
    assert_eq!(r.s, "ABC");
    let t = rt.telemetry("test_registry_upper").unwrap();
    assert_eq!(t.input_queue.capacity, 8);
    let spec = registry::lookup("test_registry_upper").unwrap();
    assert_eq!(spec.config().backpressure, Backpressure::Reject);

    rt.launch("test_registry_inferred").unwrap();
    rt.activate("test_registry_inferred").unwrap();
    let r: Num = rt.call("test_registry_inferred", Num::new(3)).await.unwrap();
    assert_eq!(r.n, -3);
    rt.shutdown().await;
}

#[tokio::test]
async fn duplicate_ids_are_reported_not_overwritten() {
    let rt = RingKernelRuntime::new();
    match rt.launch("test_registry_twice") {
        Err(Error::DuplicateKernel { id, locations }) => {
            assert_eq!(id, "test_registry_twice");
            assert_eq!(locations.len(), 2);
            assert!(locations.iter().all(|l| l.contains("registry.rs")), "{locations:?}");
        }
        other => panic!("expected DuplicateKernel, got {other:?}"),
    }
    assert!(registry::duplicates().iter().any(|(id, _)| id == "test_registry_twice"));
}

#[tokio::test]
async fn builder_registration_and_its_duplicate() {
    KernelSpec::builder::<Num, Num>("test_registry_built")
        .queue_size(32)
        .handler(times_ten)
        .register()
        .unwrap();
    let again = KernelSpec::builder::<Num, Num>("test_registry_built")
        .handler(times_ten)
        .register();
    assert!(matches!(again, Err(Error::DuplicateKernel { .. })), "{again:?}");
    // A builder registration may not shadow a macro one either.
    let clash = KernelSpec::builder::<Text, Text>("test_registry_upper")
        .handler(|_ctx: KernelContext<Text, Text>| async {})
        .register();
    assert!(matches!(clash, Err(Error::DuplicateKernel { .. })), "{clash:?}");

    let rt = RingKernelRuntime::new();
    rt.launch("test_registry_built").unwrap();
    rt.activate("test_registry_built").unwrap();
    assert_eq!(
        rt.call::<Num, Num>("test_registry_built", Num::new(2)).await.unwrap().n,
        20
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn unknown_ids_list_what_is_registered() {
    let rt = RingKernelRuntime::new();
    match rt.launch("test_registry_missing") {
        Err(Error::KernelNotFound { id, known }) => {
            assert_eq!(id, "test_registry_missing");
            assert!(known.contains(&"test_registry_upper".to_string()), "{known:?}");
        }
        other => panic!("expected KernelNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_configuration_is_refused_at_build_and_launch() {
    let err = KernelSpec::builder::<Num, Num>("bad")
        .queue_size(0)
        .handler(times_ten)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfiguration {
                parameter: "input_queue_size",
                ..
            }
        ),
        "{err:?}"
    );
    let err = KernelSpec::builder::<Num, Num>("bad")
        .backpressure_named("sometimes")
        .handler(times_ten)
        .build()
        .unwrap_err();
    match err {
        Error::InvalidConfiguration { parameter, value, .. } => {
            assert_eq!(parameter, "backpressure");
            assert!(value.contains("sometimes"));
        }
        other => panic!("expected InvalidConfiguration, got {other:?}"),
    }
    let err = KernelSpec::builder::<Num, Num>("no_handler").build().unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfiguration {
            parameter: "handler",
            ..
        }
    ));
    let err = KernelSpec::builder::<Num, Num>("  ")
        .handler(times_ten)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfiguration { parameter: "id", .. }));
    let rt = RingKernelRuntime::new();
    let config = dotcompute::KernelConfig {
        output_queue_size: 0,
        ..Default::default()
    };
    let err = rt.launch_with("bad", config, times_ten).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfiguration {
            parameter: "output_queue_size",
            ..
        }
    ));
    assert!(rt.kernel_ids().is_empty());
}
