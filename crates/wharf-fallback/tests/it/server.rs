//! The reference server over loopback: Node resolution, 301 aliases, module types, both
//! versions, builtins, never a self-redirect, and a cache that follows the files.

use std::net::SocketAddr;

use wharf_fallback::client::Client;
use wharf_fallback::{
    Answer, Attribute, ModuleKind, Request, ResolveMethod, V1Request, V2Kind, V2Request,
};

use crate::support::{config, import, serve, tree, write};

const FILES: &[(&str, &str)] = &[
    ("package.json", r#"{"name":"app","type":"module"}"#),
    ("main.js", "import './lib/util';"),
    ("lib/util.js", "export const util = 1;"),
    ("lib/dir/index.mjs", "export default 'index';"),
    ("lib/legacy.cjs", "exports.a = 1; exports.b = 2;"),
    ("data/value.json", r#"{"answer":42}"#),
    ("data/notes.txt", "hello"),
    ("data/blob.bin", "\u{1}\u{2}"),
    ("data/add.wasm", "\0asm"),
    (
        "node_modules/pkg/package.json",
        r#"{"exports":{".":{"require":"./cjs.js","import":"./esm.mjs"},"./feature/*":"./features/*.js"}}"#,
    ),
    ("node_modules/pkg/esm.mjs", "export default 'esm';"),
    ("node_modules/pkg/cjs.js", "module.exports = 'cjs';"),
    ("node_modules/pkg/features/x.js", "module.exports = 'x';"),
    ("node_modules/old/package.json", r#"{"main":"lib/main"}"#),
    ("node_modules/old/lib/main.js", "module.exports = 'old';"),
    ("node_modules/@scope/tool/index.js", "module.exports = 'tool';"),
];

async fn ask(addr: SocketAddr, request: &Request) -> Answer {
    Client::new(config(addr)).resolve(request).await.unwrap()
}

fn redirect(to: &str) -> Answer {
    Answer::Redirect(to.to_owned())
}

fn kind(answer: Answer) -> ModuleKind {
    match answer {
        Answer::Module(m) => m.kind,
        other => panic!("expected a module, got {other:?}"),
    }
}

#[tokio::test]
async fn node_resolution_answers_301_aliases() {
    let dir = tree(FILES);
    let server = serve(dir.path()).await;
    let addr = server.local_addr();
    let require = |path: &str, raw: &str| {
        Request::V1(V1Request::new(path, "/main.js", raw, ResolveMethod::Require))
    };
    let cases = [
        (import("/lib/util", "./lib/util"), redirect("/lib/util.js")),
        (import("/lib/dir", "./lib/dir"), redirect("/lib/dir/index.mjs")),
        (import("/a/../lib/./util.js", "./lib/util.js"), redirect("/lib/util.js")),
        (import("/pkg", "pkg"), redirect("/node_modules/pkg/esm.mjs")),
        (require("/pkg", "pkg"), redirect("/node_modules/pkg/cjs.js")),
        (import("/pkg/feature/x", "pkg/feature/x"), redirect("/node_modules/pkg/features/x.js")),
        (import("/old", "old"), redirect("/node_modules/old/lib/main.js")),
        (import("/@scope/tool", "@scope/tool"), redirect("/node_modules/@scope/tool/index.js")),
    ];
    for (request, expected) in cases {
        assert_eq!(ask(addr, &request).await, expected, "{request:?}");
    }
    for missing in [
        import("/nope", "./nope"),
        import("/pkg/private", "pkg/private"),
        import("/ghost", "ghost"),
    ] {
        assert!(
            matches!(ask(addr, &missing).await, Answer::NotFound(nf) if nf.status == 404),
            "{missing:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn builtins_are_not_found_and_never_self_redirected() {
    let dir = tree(&[("node:fs", "a file named like a builtin"), ("x.js", "")]);
    let server = serve(dir.path()).await;
    for request in [
        import("/node:fs", "node:fs"),
        import("/a/b/cloudflare:sockets", "cloudflare:sockets"),
        import("/fs", "node:fs"),
    ] {
        let Answer::NotFound(nf) = ask(server.local_addr(), &request).await else {
            panic!("{request:?}")
        };
        assert!(nf.message.contains("builtin"), "{}", nf.message);
    }
    // The file asked for is what resolves: a module, never a 301 to itself.
    assert!(matches!(
        ask(server.local_addr(), &import("/x.js", "./x.js")).await,
        Answer::Module(_)
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn module_types_come_from_the_file() {
    let dir = tree(FILES);
    let server = serve(dir.path()).await;
    let addr = server.local_addr();
    let k = |path: &'static str| async move { kind(ask(addr, &import(path, "")).await) };
    assert_eq!(k("/lib/util.js").await, ModuleKind::EsModule("export const util = 1;".to_owned()));
    assert_eq!(
        k("/node_modules/pkg/cjs.js").await,
        ModuleKind::CommonJs {
            source: "module.exports = 'cjs';".to_owned(),
            named_exports: vec![]
        }
    );
    assert_eq!(
        k("/lib/legacy.cjs").await,
        ModuleKind::CommonJs {
            source: "exports.a = 1; exports.b = 2;".to_owned(),
            named_exports: vec!["a".to_owned(), "b".to_owned()]
        }
    );
    assert_eq!(k("/data/value.json").await, ModuleKind::Json(r#"{"answer":42}"#.to_owned()));
    assert_eq!(k("/data/notes.txt").await, ModuleKind::Text("hello".to_owned()));
    assert_eq!(k("/data/blob.bin").await, ModuleKind::Data(vec![1, 2]));
    assert_eq!(k("/data/add.wasm").await, ModuleKind::Wasm(b"\0asm".to_vec()));
    server.shutdown().await;
}

#[tokio::test]
async fn v2_uses_urls_under_the_bundle_base() {
    let dir = tree(FILES);
    let server = serve(dir.path()).await;
    let client = Client::new(config(server.local_addr()));
    let v2 = |specifier: &str, raw: Option<&str>, kind| {
        Request::V2(V2Request {
            kind,
            specifier: specifier.to_owned(),
            raw_specifier: raw.map(str::to_owned),
            referrer: "file:///bundle/main.js".to_owned(),
            attributes: vec![Attribute { name: "type".to_owned(), value: "json".to_owned() }],
        })
    };
    let answer = client
        .resolve(&v2("file:///bundle/lib/util", Some("./lib/util"), V2Kind::Import))
        .await
        .unwrap();
    assert_eq!(answer, redirect("file:///bundle/lib/util.js"));
    let followed = client
        .resolve_following(&v2("file:///bundle/pkg", Some("pkg"), V2Kind::Require))
        .await
        .unwrap();
    assert_eq!(followed.chain, ["file:///bundle/pkg", "file:///bundle/node_modules/pkg/cjs.js"]);
    let Answer::Module(module) = followed.answer else { panic!("a module") };
    assert_eq!(module.name.as_deref(), Some("file:///bundle/node_modules/pkg/cjs.js"));
    let outside =
        client.resolve(&v2("file:///elsewhere/x.js", None, V2Kind::Internal)).await.unwrap();
    assert!(matches!(outside, Answer::NotFound(_)));
    server.shutdown().await;
}

#[tokio::test]
async fn the_cache_follows_file_changes() {
    let dir = tree(&[
        ("package.json", r#"{"type":"module"}"#),
        ("dep/index.js", "export default 'index';"),
    ]);
    let server = serve(dir.path()).await;
    let client = Client::new(config(server.local_addr()));
    let request = import("/dep", "./dep");
    assert_eq!(client.resolve(&request).await.unwrap(), redirect("/dep/index.js"));
    assert_eq!(client.resolve(&request).await.unwrap(), redirect("/dep/index.js"));
    assert_eq!(server.stats().cache_hits, 1);
    // A new file that Node would pick first changes the answer.
    write(dir.path(), "dep.js", b"export default 'file';");
    assert_eq!(client.resolve(&request).await.unwrap(), redirect("/dep.js"));
    // A changed module is served changed.
    let target = import("/dep.js", "./dep.js");
    assert_eq!(
        kind(client.resolve(&target).await.unwrap()),
        ModuleKind::EsModule("export default 'file';".to_owned())
    );
    write(dir.path(), "dep.js", b"export default 'changed, and longer';");
    assert_eq!(
        kind(client.resolve(&target).await.unwrap()),
        ModuleKind::EsModule("export default 'changed, and longer';".to_owned())
    );
    // A package.json that turns the package into CommonJS changes the module type.
    write(dir.path(), "package.json", br#"{"type":"commonjs"}"#);
    assert!(matches!(kind(client.resolve(&target).await.unwrap()), ModuleKind::CommonJs { .. }));
    std::fs::remove_file(dir.path().join("dep.js")).unwrap();
    assert!(matches!(client.resolve(&target).await.unwrap(), Answer::NotFound(_)));
    server.shutdown().await;
}

#[tokio::test]
async fn requests_that_are_not_fallback_requests_get_400() {
    let dir = tree(&[]);
    let server = serve(dir.path()).await;
    let mut stream = tokio::net::TcpStream::connect(server.local_addr()).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /?specifier=%2Fa HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    server.shutdown().await;
}
