//! A TCP proxy on loopback: one stable address in front of a Redis whose
//! port can change, as a DNS name, a virtual IP or a managed endpoint is in
//! front of a primary that fails over. Connections already open stay with
//! the server they were opened to (as they do behind a real VIP switch);
//! new connections go to the current target.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running proxy; stops when dropped.
pub struct Proxy {
    port: u16,
    target: Arc<AtomicU16>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target`.
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let target = Arc::new(AtomicU16::new(target));
        let task = tokio::spawn({
            let target = Arc::clone(&target);
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let to = target.load(Ordering::SeqCst);
                    tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(("127.0.0.1", to)).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            }
        });
        Self { port, target, task }
    }

    /// The stable address.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends new connections to `127.0.0.1:port` from now on.
    pub fn switch_to(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
