//! The loopback API server, checked through the real kube-rs client (and raw HTTP where
//! the exact bytes matter).

mod clusters;
mod crud;
mod faults;
mod patch;
mod selectors;
mod watch;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Status;
use kube::{Client, Config};
use meshtrust_testkit::apiserver::Harness;
use serde_json::{Value, json};

/// The kube-rs configuration for one context of the harness's kubeconfig.
pub async fn config(h: &Harness, context: &str) -> Config {
    // The AWS SDK in this test binary enables aws-lc-rs too; rustls needs one provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = Kubeconfig::read_from(h.kubeconfig_path()).expect("the kubeconfig parses");
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..KubeConfigOptions::default()
    };
    Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("the context loads")
}

/// A kube-rs client for one context of the harness's kubeconfig.
pub async fn client(h: &Harness, context: &str) -> Client {
    Client::try_from(config(h, context).await).expect("a client")
}

/// The `Status` of a failed call; panics on success or a non-API error.
pub fn status<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Box<Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// One raw HTTP/1.1 request; returns the status code and the JSON body.
pub fn raw(url: &str, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (code, json)
}

/// A namespace object for `Cluster::seed`.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}
