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

use kube::core::Status;
use kube::{Client, Config};
use meshtrust_testkit::apiserver::Harness;
use serde_json::{Value, json};

/// The kube-rs configuration for one context of the harness's kubeconfig.
pub async fn config(h: &Harness, context: &str) -> Config {
    h.kube_config(context).await
}

/// A kube-rs client for one context of the harness's kubeconfig.
pub async fn client(h: &Harness, context: &str) -> Client {
    h.kube_client(context).await
}

/// A ConfigMap with only a name.
pub fn cm(name: &str) -> k8s_openapi::api::core::v1::ConfigMap {
    k8s_openapi::api::core::v1::ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..kube::api::ObjectMeta::default()
        },
        ..Default::default()
    }
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
