//! The same router over HTTP/1.1 on a free loopback port, for the `convoy` binary and other
//! out-of-process clients, plus a kubeconfig pointing at it. The server has its own thread and
//! runtime, so a test thread blocked on a child process does not stop it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::thread::JoinHandle;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::ApiServer;

/// A running HTTP server; dropping it closes the port and every open connection.
pub struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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

pub fn serve(server: ApiServer) -> Served {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let addr = listener.local_addr().expect("bound address");
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("kube-api-{}", addr.port()))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the test API server");
            runtime.block_on(async move {
                server.start_controllers();
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                tokio::select! {
                    _ = accept(listener, server) => {}
                    _ = stopped => {}
                }
            });
        })
        .expect("spawn the test API server thread");
    Served {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    }
}

async fn accept(listener: TcpListener, server: ApiServer) {
    // Dropping the set when the server stops aborts every open connection.
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
}
