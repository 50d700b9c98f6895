//! The `TCP_PORT` echo server.

use std::net::Ipv4Addr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wharf_testapp::tcp_echo;

#[tokio::test]
async fn answers_the_first_chunk_and_closes() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tcp_echo::serve(listener));

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"hello").await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer, "echo:hello");

    // A client that sends nothing gets nothing, and the server still closes.
    let mut quiet = TcpStream::connect(addr).await.unwrap();
    quiet.shutdown().await.unwrap();
    let mut answer = Vec::new();
    quiet.read_to_end(&mut answer).await.unwrap();
    assert!(answer.is_empty());
}
