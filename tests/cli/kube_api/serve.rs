//! The same router over HTTP/1.1 on a free loopback port, for the `convoy` binary and other
//! out-of-process clients, plus a kubeconfig pointing at it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::ApiServer;

/// A running HTTP server; it stops (with all its connections) when dropped.
pub struct Served {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Served {
    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig whose `context` (also the current context) points at this server with
    /// `namespace` as its default namespace and a dummy bearer token.
    pub fn write_kubeconfig(&self, path: &Path, context: &str, namespace: &str) {
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: convoy-test
  cluster:
    server: {url}
contexts:
- name: {context}
  context:
    cluster: convoy-test
    user: convoy-test
    namespace: {namespace}
current-context: {context}
users:
- name: convoy-test
  user:
    token: convoy-test-token
",
            url = self.url()
        );
        std::fs::write(path, text).expect("write kubeconfig");
    }
}

pub async fn serve(server: ApiServer) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let task = tokio::spawn(async move {
        // Dropping the set when the accept loop is aborted aborts every open connection.
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let server = server.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let server = server.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(server.handle(parts, body).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    Served { addr, task }
}
