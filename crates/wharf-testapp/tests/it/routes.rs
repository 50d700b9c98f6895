//! The plain routes: hello, files, PID namespace, environment, keep-alive.

use crate::support::{Client, Setup, get};

#[tokio::test]
async fn unknown_routes_say_hello_and_keep_the_connection() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let mut client = Client::connect(addr).await;
    let reply = client.send("GET", "/", &[], "").await;
    assert_eq!(reply.summary(), "200 Hello World!");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    // A body the route ignores is drained, so the same connection serves the next request.
    assert_eq!(
        client.send("POST", "/foo/bar/baz", &[], "hello").await.summary(),
        "200 Hello World!"
    );
    assert_eq!(client.send("DELETE", "/x?y=z", &[], "").await.summary(), "200 Hello World!");
}

#[tokio::test]
async fn files_are_written_and_read_back() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let path = setup.path("app/data/test.txt");
    let encoded = path.display().to_string().replace('/', "%2F");
    let mut client = Client::connect(addr).await;

    let write = client
        .send("POST", &format!("/write-file?path={encoded}"), &[], "snapshot-content-123")
        .await;
    assert_eq!(write.summary(), "200 ok");
    let read = client.send("GET", &format!("/read-file?path={}", path.display()), &[], "").await;
    assert_eq!(read.summary(), "200 snapshot-content-123");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "snapshot-content-123");
}

#[tokio::test]
async fn file_errors() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let missing = setup.path("missing.txt");
    let read = get(addr, &format!("/read-file?path={}", missing.display()), &[]).await;
    assert_eq!(read.status, 404);
    assert!(read.body.contains("No such file or directory"), "{}", read.body);

    let mut client = Client::connect(addr).await;
    let no_path = r#"400 Missing "path" query param"#;
    assert_eq!(client.send("POST", "/write-file", &[], "x").await.summary(), no_path);
    assert_eq!(client.send("POST", "/write-file?path=", &[], "x").await.summary(), no_path);
    assert_eq!(client.send("GET", "/read-file", &[], "").await.summary(), no_path);

    // A parent that is a file cannot be a directory.
    let file = setup.path("plain");
    std::fs::write(&file, "").unwrap();
    let under_file = format!("/write-file?path={}/child", file.display());
    let write = client.send("POST", &under_file, &[], "x").await;
    assert_eq!(write.status, 500);
    assert!(write.body.starts_with("mkdir "), "{}", write.body);
}

#[tokio::test]
async fn pid_namespace_reports_this_process() {
    let setup = Setup::new("");
    let reply = get(setup.start().await, "/pid-namespace", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(json["pid"], std::process::id());
    assert_eq!(json["ppid"], std::os::unix::process::parent_id());
    assert!(json["init"].is_string(), "{json}");
}

#[tokio::test]
async fn env_reports_the_environment_it_was_given() {
    let mut setup = Setup::new("");
    setup.env.insert("A".to_owned(), "1".to_owned());
    setup.env.insert("L".to_owned(), "overridden".to_owned());
    let reply = get(setup.start().await, "/env", &[]).await;
    assert_eq!(reply.summary(), r#"200 {"A":"1","L":"overridden"}"#);
}
