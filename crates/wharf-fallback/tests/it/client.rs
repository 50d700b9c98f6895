//! The client's acceptance tests (issue 4), over loopback: draining keeps one connection; a
//! server's idle close and a server restart are survived; slow, malformed and huge answers are
//! clear errors; redirect loops are caught; 64 concurrent callers get their own answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wharf_fallback::client::{BlockingClient, Client, ClientConfig, Error, Followed, Stats};
use wharf_fallback::server::{Server, ServerConfig};
use wharf_fallback::{Answer, AnswerError, ModuleKind, Request};

use crate::support::{
    Script, Scripted, chunked, config, eventually, import, numbered_modules, serve, sized,
};

/// Which client a test drives.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Async,
    Blocking,
}

/// Either client, driven from async test code: the blocking one on a blocking thread, as a
/// runtime's isolate thread would call it.
#[derive(Debug, Clone)]
enum Either {
    Async(Client),
    Blocking(BlockingClient),
}

impl Either {
    fn new(kind: Kind, config: ClientConfig) -> Either {
        match kind {
            Kind::Async => Either::Async(Client::new(config)),
            Kind::Blocking => Either::Blocking(BlockingClient::new(config).unwrap()),
        }
    }

    async fn resolve(&self, request: &Request) -> Result<Answer, Error> {
        match self {
            Either::Async(client) => client.resolve(request).await,
            Either::Blocking(client) => {
                let (client, request) = (client.clone(), request.clone());
                tokio::task::spawn_blocking(move || client.resolve(&request)).await.unwrap()
            }
        }
    }

    async fn resolve_following(&self, request: &Request) -> Result<Followed, Error> {
        match self {
            Either::Async(client) => client.resolve_following(request).await,
            Either::Blocking(client) => {
                let (client, request) = (client.clone(), request.clone());
                tokio::task::spawn_blocking(move || client.resolve_following(&request))
                    .await
                    .unwrap()
            }
        }
    }

    fn stats(&self) -> Stats {
        match self {
            Either::Async(client) => client.stats(),
            Either::Blocking(client) => client.stats(),
        }
    }
}

/// Each test named here runs twice, once per client: `<name>::async_client` and
/// `<name>::blocking_client`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn async_client() {
                super::$name(super::Kind::Async).await;
            }

            #[tokio::test]
            async fn blocking_client() {
                super::$name(super::Kind::Blocking).await;
            }
        }
    )*};
}

both!(
    redirect_draining_keeps_one_connection,
    reference_server_redirects_keep_one_connection,
    server_idle_close_is_survived_with_zero_errors,
    a_server_restart_gives_a_clear_error_then_recovers,
    a_server_restart_under_load_costs_no_hang_and_no_panic,
    a_slow_answer_hits_the_request_timeout,
    a_refused_connect_is_a_clear_error,
    malformed_answers_are_clear_errors,
    huge_answers_are_refused,
    redirect_loops_are_detected,
    connection_close_answers_are_not_reused,
    waiting_for_a_connection_counts_against_the_timeout,
);

/// Redirect to `<specifier>.js`, Node-style (chunked, `0\r\n\r\n` body), then a chunked module.
fn node_like(specifier: &str) -> Script {
    if specifier.ends_with(".js") {
        Script::Reply(chunked(
            "200 OK",
            &[("content-type", "application/json")],
            r#"{"esModule":"export default 1"}"#,
        ))
    } else {
        Script::Reply(chunked(
            "301 Moved Permanently",
            &[("location", &format!("{specifier}.js"))],
            "",
        ))
    }
}

async fn redirect_draining_keeps_one_connection(kind: Kind) {
    let server = Scripted::start(node_like).await;
    let client = Either::new(kind, config(server.addr));
    for i in 0..200 {
        let followed =
            client.resolve_following(&import(&format!("/m{i}"), &format!("./m{i}"))).await.unwrap();
        assert_eq!(followed.chain.len(), 2);
        assert!(matches!(followed.answer, Answer::Module(_)));
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(client.stats().connections_opened, 1);
}

async fn reference_server_redirects_keep_one_connection(kind: Kind) {
    let dir = numbered_modules(50);
    let server = serve(dir.path()).await;
    let client = Either::new(kind, config(server.local_addr()));
    for i in 0..50 {
        let followed =
            client.resolve_following(&import(&format!("/m{i}"), &format!("./m{i}"))).await.unwrap();
        assert_eq!(
            followed.answer,
            Answer::Module(wharf_fallback::Module {
                name: Some(format!("m{i}.js")),
                kind: ModuleKind::EsModule(format!("export default {i};")),
            })
        );
    }
    let stats = server.stats();
    assert_eq!((stats.connections_accepted, stats.requests, stats.redirects), (1, 100, 50));
    server.shutdown().await;
}

async fn server_idle_close_is_survived_with_zero_errors(kind: Kind) {
    let dir = numbered_modules(8);
    let mut server_config =
        ServerConfig::new(dir.path(), SocketAddr::from(crate::support::LOOPBACK));
    // Long enough that a new connection's request always arrives before the close, however
    // loaded the machine: the test waits for each close rather than racing it.
    server_config.idle_close = Some(Duration::from_millis(20));
    let server = Server::bind(server_config).await.unwrap();
    let client = Either::new(kind, config(server.local_addr()));
    // Every other request waits until the server has closed the idle connection; the ones in
    // between follow at once, on a live connection. Neither may fail.
    for i in 0..200 {
        let request = import(&format!("/m{}.js", i % 8), "");
        assert!(matches!(client.resolve(&request).await, Ok(Answer::Module(_))), "request {i}");
        if i % 2 == 0 {
            eventually(Duration::from_secs(10), || server.stats().connections_open == 0).await;
        }
    }
    let (stats, server_stats) = (client.stats(), server.stats());
    assert!(server_stats.idle_closes >= 100, "{server_stats:?}");
    assert!(stats.stale_discarded + stats.retries >= 100, "{stats:?}");
    server.shutdown().await;
}

async fn a_server_restart_gives_a_clear_error_then_recovers(kind: Kind) {
    let dir = numbered_modules(4);
    let server = serve(dir.path()).await;
    let addr = server.local_addr();
    let client = Either::new(kind, config(addr));
    for i in 0..4 {
        client.resolve(&import(&format!("/m{i}.js"), "")).await.unwrap();
    }
    server.shutdown().await;
    let down = client.resolve(&import("/m0.js", "")).await.unwrap_err();
    assert!(matches!(down, Error::Connect { .. }), "{down}");
    assert!(down.to_string().contains("cannot connect to the fallback service"), "{down}");
    let server = Server::bind(ServerConfig::new(dir.path(), addr)).await.unwrap();
    for i in 0..4 {
        assert!(matches!(
            client.resolve(&import(&format!("/m{i}.js"), "")).await,
            Ok(Answer::Module(_))
        ));
    }
    server.shutdown().await;
}

async fn a_server_restart_under_load_costs_no_hang_and_no_panic(kind: Kind) {
    let dir = numbered_modules(16);
    let server = serve(dir.path()).await;
    let addr = server.local_addr();
    let client = Either::new(kind, config(addr));
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for _ in 0..100 {
                    outcomes
                        .push(client.resolve(&import(&format!("/m{i}.js"), "")).await.map(|_| ()));
                    tokio::task::yield_now().await;
                }
                outcomes
            })
        })
        .collect();
    server.shutdown().await;
    let server = Server::bind(ServerConfig::new(dir.path(), addr)).await.unwrap();
    for caller in callers {
        for outcome in caller.await.unwrap() {
            if let Err(e) = outcome {
                assert!(matches!(e, Error::Connect { .. } | Error::Disconnected(_)), "{e}");
            }
        }
    }
    assert!(client.resolve(&import("/m0.js", "")).await.is_ok());
    server.shutdown().await;
}

async fn a_slow_answer_hits_the_request_timeout(kind: Kind) {
    let server = Scripted::start(|_| Script::Hang).await;
    let mut cfg = config(server.addr);
    cfg.request_timeout = Duration::from_millis(100);
    let client = Either::new(kind, cfg);
    let error = client.resolve(&import("/a.js", "")).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }) && error.is_timeout(), "{error}");
    assert!(error.to_string().contains("did not answer within"), "{error}");
}

async fn a_refused_connect_is_a_clear_error(kind: Kind) {
    let listener = std::net::TcpListener::bind(SocketAddr::from(crate::support::LOOPBACK)).unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = Either::new(kind, config(addr)).resolve(&import("/a.js", "")).await.unwrap_err();
    assert!(
        matches!(&error, Error::Connect { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{error}"
    );
}

async fn malformed_answers_are_clear_errors(kind: Kind) {
    let server = Scripted::start(|specifier| match specifier {
        "/garbage.js" => Script::ReplyAndClose(b"HELLO THERE\r\n\r\n".to_vec()),
        "/bad-json.js" => Script::Reply(sized("200 OK", &[], "{\"esModule\":")),
        "/no-location.js" => Script::Reply(sized("301 Moved Permanently", &[], "")),
        "/python.js" => Script::Reply(sized("200 OK", &[], r#"{"pythonModule":"x"}"#)),
        "/wrong-name.js" => {
            Script::Reply(sized("200 OK", &[], r#"{"name":"/wrong-name.js","esModule":""}"#))
        }
        "/cut.js" => Script::ReplyAndClose(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"esMod".to_vec(),
        ),
        "/closed.js" => Script::ReplyAndClose(Vec::new()),
        _ => Script::Reply(sized("200 OK", &[], r#"{"esModule":"ok"}"#)),
    })
    .await;
    let client = Either::new(kind, config(server.addr));
    let error = |path: &'static str| {
        let client = client.clone();
        async move { client.resolve(&import(path, "")).await.unwrap_err() }
    };
    assert!(matches!(error("/garbage.js").await, Error::Http(_)));
    assert!(matches!(error("/bad-json.js").await, Error::Answer(AnswerError::Json(_))));
    assert!(matches!(
        error("/no-location.js").await,
        Error::Answer(AnswerError::RedirectWithoutLocation)
    ));
    assert!(matches!(
        error("/python.js").await,
        Error::Answer(AnswerError::Unsupported("pythonModule"))
    ));
    assert!(matches!(
        error("/wrong-name.js").await,
        Error::Answer(AnswerError::NameMismatch { .. })
    ));
    assert!(matches!(error("/cut.js").await, Error::Disconnected(_)));
    assert!(matches!(error("/closed.js").await, Error::Disconnected(_)));
    // After all that, the client still works.
    assert!(matches!(client.resolve(&import("/ok.js", "")).await, Ok(Answer::Module(_))));
}

async fn huge_answers_are_refused(kind: Kind) {
    let big = "x".repeat(64 << 10);
    let body = format!(r#"{{"text":"{big}"}}"#);
    let head = format!(
        "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: 2\r\n\r\n{{}}",
        "y".repeat(1 << 20)
    );
    let server = Scripted::start(move |specifier| match specifier {
        "/declared.js" => Script::Reply(sized("200 OK", &[], &body)),
        "/chunked.js" => Script::Reply(chunked("200 OK", &[], &body)),
        "/head.js" => Script::Reply(head.clone().into_bytes()),
        _ => Script::Reply(sized("200 OK", &[], r#"{"esModule":"ok"}"#)),
    })
    .await;
    let mut cfg = config(server.addr);
    cfg.max_answer_bytes = 16 << 10;
    let client = Either::new(kind, cfg);
    for path in ["/declared.js", "/chunked.js"] {
        let error = client.resolve(&import(path, "")).await.unwrap_err();
        assert!(matches!(error, Error::TooLarge { limit: 16384 }), "{path}: {error}");
    }
    let error = client.resolve(&import("/head.js", "")).await.unwrap_err();
    assert!(matches!(error, Error::Http(_)), "{error}");
    assert!(matches!(client.resolve(&import("/ok.js", "")).await, Ok(Answer::Module(_))));
}

async fn redirect_loops_are_detected(kind: Kind) {
    let server = Scripted::start(|specifier| {
        let to = match specifier {
            "/a.js" => "/b.js".to_owned(),
            "/b.js" => "/a.js".to_owned(),
            "/self.js" => "/self.js".to_owned(),
            "/self-relative.js" => "./self-relative.js".to_owned(),
            s => format!("{s}x"),
        };
        Script::Reply(sized("301 Moved Permanently", &[("location", &to)], ""))
    })
    .await;
    let client = Either::new(kind, config(server.addr));
    let follow = |path: &'static str| {
        let client = client.clone();
        async move { client.resolve_following(&import(path, "")).await.unwrap_err() }
    };
    let Error::RedirectLoop { chain } = follow("/a.js").await else { panic!("a loop") };
    assert_eq!(chain, ["/a.js", "/b.js", "/a.js"]);
    assert!(matches!(follow("/self.js").await, Error::RedirectLoop { .. }));
    assert!(matches!(follow("/self-relative.js").await, Error::RedirectLoop { .. }));
    let Error::TooManyRedirects { chain, limit } = follow("/n").await else { panic!("too many") };
    assert_eq!((chain.len(), limit), (18, 16));
    // Redirects returned as they are, when the caller follows them itself.
    assert_eq!(
        client.resolve(&import("/self.js", "")).await.unwrap(),
        Answer::Redirect("/self.js".to_owned())
    );
}

async fn connection_close_answers_are_not_reused(kind: Kind) {
    let server = Scripted::start(|_| {
        let body = r#"{"esModule":"ok"}"#;
        Script::ReplyAndClose(sized("200 OK", &[("connection", "close")], body))
    })
    .await;
    let client = Either::new(kind, config(server.addr));
    for i in 0..10 {
        let answer = client.resolve(&import(&format!("/m{i}.js"), "")).await;
        assert!(matches!(answer, Ok(Answer::Module(_))), "request {i}: {answer:?}");
    }
    let stats = client.stats();
    assert_eq!((stats.connections_opened, stats.reused, stats.retries), (10, 0, 0), "{stats:?}");
    assert_eq!(server.connections(), 10);
}

async fn waiting_for_a_connection_counts_against_the_timeout(kind: Kind) {
    let server = Scripted::start(|_| Script::Hang).await;
    let mut cfg = config(server.addr);
    cfg.max_connections = 1;
    cfg.request_timeout = Duration::from_millis(200);
    let client = Either::new(kind, cfg);
    let (a, b) = (import("/a.js", ""), import("/b.js", ""));
    let (first, second) = tokio::join!(client.resolve(&a), client.resolve(&b));
    for error in [first.unwrap_err(), second.unwrap_err()] {
        assert!(matches!(error, Error::Timeout { .. }), "{error}");
    }
    // The waiter never got a connection: one was opened, for the first request.
    assert_eq!(server.connections(), 1);
}

#[test]
fn sixty_four_blocking_callers_each_get_their_own_answers() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = numbered_modules(64);
    let server = runtime.block_on(serve(dir.path()));
    let client = BlockingClient::new(config(server.local_addr())).unwrap();
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let client = client.clone();
            std::thread::spawn(move || {
                for round in 0..50 {
                    let path = format!("/m{i}.js");
                    let Ok(Answer::Module(module)) = client.resolve(&import(&path, "")) else {
                        panic!("caller {i} round {round}: no module")
                    };
                    assert_eq!(module.name.as_deref(), Some(&path[1..]));
                    assert_eq!(module.kind, ModuleKind::EsModule(format!("export default {i};")));
                    let followed =
                        client.resolve_following(&import(&format!("/m{i}"), "")).unwrap();
                    assert_eq!(followed.chain, [format!("/m{i}"), path.clone()]);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stats = client.stats();
    assert!(stats.connections_opened <= 8, "{stats:?}");
    assert!(server.stats().connections_accepted <= 8);
    runtime.block_on(server.shutdown());
}

#[tokio::test]
async fn sixty_four_async_callers_share_a_bounded_pool() {
    let dir = numbered_modules(64);
    let server = serve(dir.path()).await;
    let client = Arc::new(Client::new(config(server.local_addr())));
    let callers: Vec<_> = (0..64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let answer = client.resolve(&import(&format!("/m{i}.js"), "")).await.unwrap();
                    let Answer::Module(module) = answer else { panic!("caller {i}: no module") };
                    assert_eq!(module.kind, ModuleKind::EsModule(format!("export default {i};")));
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    assert!(server.stats().connections_accepted <= 8);
    server.shutdown().await;
}
