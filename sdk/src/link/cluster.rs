//! [`ClusterLink`]: the connection to a Redis Cluster, and [`Node`]: a
//! connection to one of its masters.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ConnectionInfo, PushInfo, RedisError, RedisFuture, Value};
use tokio::sync::OnceCell;

use super::backoff::Reconnects;
use super::SingleLink;

/// Times a command is sent again after a retryable cluster error (`MOVED`,
/// `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, a lost node connection), with waits
/// growing from [`MIN_RETRY_WAIT_MS`] to [`MAX_RETRY_WAIT_MS`]: about 4 s
/// in all, enough for a slot migration's step or a replica's promotion
/// with a short `cluster-node-timeout`; past it the caller gets the error,
/// and a worker's loops try again on their next round.
const RETRIES: u32 = 8;
/// Shortest wait before a retry, in milliseconds.
const MIN_RETRY_WAIT_MS: u64 = 10;
/// Longest wait before a retry, in milliseconds.
const MAX_RETRY_WAIT_MS: u64 = 1000;

/// A cluster's seeds and connection settings, from a `redis+cluster://` URL.
#[derive(Clone)]
pub(crate) struct ClusterSpec {
    /// The seed nodes, each with the URL's credentials.
    pub(crate) seeds: Vec<ConnectionInfo>,
    /// TLS (`rediss+cluster://`).
    pub(crate) tls: bool,
    /// The CA to trust for TLS, beside the system's.
    pub(crate) root_cert: Option<Vec<u8>>,
    /// How long a command may wait for its reply, per node.
    pub(crate) response_timeout: Duration,
    /// How long a connect to a node may take.
    pub(crate) connect_timeout: Duration,
}

impl ClusterSpec {
    /// A client for the cluster; with `push`, a RESP3 one whose pushes
    /// (Pub/Sub messages, disconnections) go to `push`.
    pub(crate) fn client(
        &self,
        push: Option<tokio::sync::mpsc::UnboundedSender<PushInfo>>,
    ) -> Result<ClusterClient, RedisError> {
        let mut builder = ClusterClientBuilder::new(self.seeds.clone())
            .response_timeout(self.response_timeout)
            .connection_timeout(self.connect_timeout)
            .retries(RETRIES)
            .min_retry_wait(MIN_RETRY_WAIT_MS)
            .max_retry_wait(MAX_RETRY_WAIT_MS);
        if self.tls {
            builder = builder.tls(redis::cluster::TlsMode::Secure);
            if let Some(pem) = &self.root_cert {
                builder = builder.certs(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                });
            }
        }
        if let Some(push) = push {
            builder = builder
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push);
        }
        builder.build()
    }
}

/// A connection to a Redis Cluster; it connects on first use, and backs
/// off after a failed connect as [`SingleLink`] does. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ClusterLink {
    shared: Arc<Shared>,
}

struct Shared {
    spec: ClusterSpec,
    conn: OnceCell<ClusterConnection>,
    reconnects: Reconnects,
}

impl ClusterLink {
    pub(crate) fn new(spec: ClusterSpec) -> Self {
        Self {
            shared: Arc::new(Shared {
                spec,
                conn: OnceCell::new(),
                reconnects: Reconnects::default(),
            }),
        }
    }

    pub(crate) fn spec(&self) -> &ClusterSpec {
        &self.shared.spec
    }

    /// The cluster connection, made on the first call that succeeds.
    async fn conn(&self) -> Result<ClusterConnection, RedisError> {
        if let Some(conn) = self.shared.conn.get() {
            return Ok(conn.clone());
        }
        if let Some(e) = self.shared.reconnects.backing_off() {
            return Err(e);
        }
        let made = self
            .shared
            .conn
            .get_or_try_init(|| async {
                self.shared.spec.client(None)?.get_async_connection().await
            })
            .await
            .cloned();
        self.shared.reconnects.note(&made);
        made
    }

    /// A connection to each master the slot map names now.
    pub(crate) async fn masters(&self) -> Result<Vec<Node>, RedisError> {
        let mut conn = self.conn().await?;
        let reply = conn
            .route_command(
                redis::cmd("PING"),
                RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
            )
            .await?;
        let Value::Map(replies) = reply else {
            return Err(RedisError::from((
                redis::ErrorKind::Client,
                "PING to every master did not answer by node",
            )));
        };
        let mut nodes = Vec::with_capacity(replies.len());
        for (addr, _) in replies {
            let addr: String = redis::from_redis_value(addr)?;
            let Some((host, port)) = addr.rsplit_once(':') else {
                continue;
            };
            let Ok(port) = port.parse() else { continue };
            nodes.push(Node::Cluster {
                conn: conn.clone(),
                host: host.to_owned(),
                port,
            });
        }
        nodes.sort_by_key(Node::address);
        Ok(nodes)
    }
}

impl ConnectionLike for ClusterLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let result = conn.req_packed_command(cmd).await;
            self.shared.reconnects.note(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let result = conn.req_packed_commands(cmd, offset, count).await;
            self.shared.reconnects.note(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// A connection to one master: the one server, or one of a cluster's
/// masters by address (through the cluster connection).
#[derive(Clone)]
pub(crate) enum Node {
    Single(SingleLink),
    Cluster {
        conn: ClusterConnection,
        host: String,
        port: u16,
    },
}

impl Node {
    /// `host:port` of a cluster's master; empty for the one server.
    pub(crate) fn address(&self) -> String {
        match self {
            Self::Single(_) => String::new(),
            Self::Cluster { host, port, .. } => format!("{host}:{port}"),
        }
    }

    fn route(host: &str, port: u16) -> SingleNodeRoutingInfo {
        SingleNodeRoutingInfo::ByAddress {
            host: host.to_owned(),
            port,
        }
    }
}

impl ConnectionLike for Node {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(l) => l.req_packed_command(cmd),
            Self::Cluster { conn, host, port } => {
                let route = RoutingInfo::SingleNode(Self::route(host, *port));
                Box::pin(async move { conn.route_command(cmd.clone(), route).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(l) => l.req_packed_commands(cmd, offset, count),
            Self::Cluster { conn, host, port } => {
                let route = Self::route(host, *port);
                Box::pin(
                    async move { conn.route_pipeline(cmd.clone(), offset, count, route).await },
                )
            }
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}
