//! Credentials reach the server as given: user/password, token and NKey are
//! accepted when right; a wrong password is refused with a clear, typed
//! error. Invalid names are refused before anything is sent.

mod common;

use std::time::Duration;

use common::{fast, NatsServer};
use dotcompute::RingKernelRuntime;
use dotcompute_nats::{Auth, NatsError, NatsNode, NatsOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_with_a_clear_error() {
    let Some(server) = NatsServer::start_with(&["--user", "dc", "--pass", "right-one"]) else {
        return;
    };
    let rt = RingKernelRuntime::new();
    let wrong = NatsOptions::new(server.url(), "n").auth(Auth::UserPassword {
        user: "dc".into(),
        password: "wrong-one".into(),
    });
    match NatsNode::connect(&rt, wrong).await {
        Err(e @ NatsError::Authentication { .. }) => {
            let text = e.to_string();
            assert!(text.contains("refused the credentials (user/password)"), "{text}");
            assert!(text.contains("authorization violation"), "{text}");
            assert!(!text.contains("wrong-one"), "the password is not printed: {text}");
        }
        Err(e) => panic!("expected an authentication error, got {e}"),
        Ok(_) => panic!("a wrong password was accepted"),
    }
    match NatsNode::connect(&rt, NatsOptions::new(server.url(), "n")).await {
        Err(NatsError::Authentication { method, .. }) => assert_eq!(method, "none"),
        Err(e) => panic!("expected an authentication error, got {e}"),
        Ok(_) => panic!("no credentials were accepted"),
    }
    let right = NatsOptions::new(server.url(), "n").auth(Auth::UserPassword {
        user: "dc".into(),
        password: "right-one".into(),
    });
    let node = NatsNode::connect(&rt, fast(right)).await.unwrap();
    assert_eq!(node.telemetry().connection.state, "connected");
    node.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_passed_through() {
    let Some(server) = NatsServer::start_with(&["--auth", "s3cret-token"]) else {
        return;
    };
    let rt = RingKernelRuntime::new();
    let bad = NatsOptions::new(server.url(), "n").auth(Auth::Token("nope".into()));
    assert!(matches!(
        NatsNode::connect(&rt, bad).await,
        Err(NatsError::Authentication { method: "token", .. })
    ));
    let good = NatsOptions::new(server.url(), "n").auth(Auth::Token("s3cret-token".into()));
    NatsNode::connect(&rt, good).await.unwrap().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nkey_is_passed_through() {
    let user = nkeys::KeyPair::new_user();
    let other = nkeys::KeyPair::new_user();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nkey.conf");
    std::fs::write(
        &config,
        format!(
            "authorization {{\n  users = [ {{ nkey: {} }} ]\n}}\n",
            user.public_key()
        ),
    )
    .unwrap();
    let Some(server) = NatsServer::start_with(&["-c", config.to_str().unwrap()]) else {
        return;
    };
    let rt = RingKernelRuntime::new();
    let bad = NatsOptions::new(server.url(), "n").auth(Auth::NKeySeed(other.seed().unwrap()));
    assert!(matches!(
        NatsNode::connect(&rt, bad).await,
        Err(NatsError::Authentication { method: "nkey", .. })
    ));
    let good = NatsOptions::new(server.url(), "n").auth(Auth::NKeySeed(user.seed().unwrap()));
    NatsNode::connect(&rt, good).await.unwrap().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_and_bad_options_are_typed_errors() {
    let rt = RingKernelRuntime::new();
    // Nothing listens on this port (bound and released by the OS just now).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = NatsOptions::new(format!("nats://127.0.0.1:{port}"), "n").connect_timeout(Duration::from_secs(2));
    assert!(matches!(
        NatsNode::connect(&rt, options).await,
        Err(NatsError::Connect { .. })
    ));
    // Invalid names are refused before any connection is tried.
    for (name, namespace) in [
        ("bad name", "dotcompute"),
        ("n", "x.*"),
        ("n", "_INBOX"),
        ("a.b", "dotcompute"),
    ] {
        let options = NatsOptions::new("nats://127.0.0.1:1", name).namespace(namespace);
        assert!(matches!(
            NatsNode::connect(&rt, options).await,
            Err(NatsError::InvalidName { .. })
        ));
    }
    assert!(matches!(
        NatsNode::connect(
            &rt,
            NatsOptions::new("nats://127.0.0.1:1", "n").call_timeout(Duration::ZERO)
        )
        .await,
        Err(NatsError::InvalidOption {
            option: "call_timeout",
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_are_passed_through() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("server.pem");
    let key_path = dir.path().join("server.key");
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();
    let Some(server) = NatsServer::start_with(&[
        "--tls",
        "--tlscert",
        cert_path.to_str().unwrap(),
        "--tlskey",
        key_path.to_str().unwrap(),
    ]) else {
        return;
    };
    let rt = RingKernelRuntime::new();
    let url = format!("tls://127.0.0.1:{}", server.port());
    // Without the server's certificate among the roots: a TLS error.
    let untrusted = NatsOptions::new(url.clone(), "n").connect_timeout(Duration::from_secs(3));
    match NatsNode::connect(&rt, untrusted).await {
        Err(NatsError::Tls { .. } | NatsError::Connect { .. }) => {}
        Err(e) => panic!("expected a TLS error, got {e}"),
        Ok(_) => panic!("an untrusted certificate was accepted"),
    }
    // With it: connected, over TLS.
    let trusted = NatsOptions::new(url, "n").tls(
        dotcompute_nats::TlsOptions::default()
            .required(true)
            .root_certificate(&cert_path),
    );
    let node = NatsNode::connect(&rt, trusted).await.unwrap();
    assert_eq!(node.telemetry().connection.state, "connected");
    node.close().await;
}
