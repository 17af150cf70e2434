//! [`Link`]: the connection every client and worker command goes through,
//! to one server ([`SingleLink`]) or to a Redis Cluster ([`ClusterLink`]).
//!
//! To one server, it wraps redis-rs's auto-reconnecting `ConnectionManager`
//! with what production Redis needs:
//!
//! - **Failovers behind one address** (Sentinel, a managed endpoint, a DNS
//!   or VIP switch): a `READONLY`, `LOADING` or `MASTERDOWN` reply means the
//!   connection reached a server that is not (or not yet) the primary. The
//!   link drops that connection, opens a new one to the same address, and
//!   sends the command once more. The server refused the command, so
//!   sending it again cannot run it twice.
//! - **Connections closed under it** (the server's `timeout`, a proxy or NAT
//!   that drops idle connections, a quick restart): a command that fails
//!   because the connection was dropped is sent once more on a fresh
//!   connection. Every command Ferry sends is safe to send again: the
//!   scripts that settle a job check that the entry is still the caller's,
//!   and an enqueue sends the same job ids again, so in the rare case where
//!   the first send had run and only its reply was lost, the job is there
//!   twice under one id, which workers treat like any at-least-once
//!   redelivery. A timeout is not retried: the command may still be running.
//! - **Reconnects back off**: after a connection failure, commands fail at
//!   once with the last error until a short delay (50 ms per failure in a
//!   row, at most 2 s) has passed, so a fleet at `maxclients` or facing a
//!   down server does not hammer it.

//!
//! To a cluster, redis-rs's async cluster connection routes each command
//! (a script by its first key) to the master of the slot, follows `MOVED`
//! and `ASK`, retries `TRYAGAIN` (a slot being migrated) and `CLUSTERDOWN`,
//! refreshes the slot map after a failover, and reconnects to nodes; the
//! link adds the lazy first connect and the same reconnect backoff. Every
//! key of a queue carries the queue's hash tag, so each script's keys live
//! in one slot. Commands that are about the server rather than a queue
//! (`INFO`, `SCAN` for discovery) go to every master through [`Node`]s.

mod backoff;
mod cluster;
mod single;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

pub(crate) use cluster::{ClusterLink, ClusterSpec, Node};
pub(crate) use single::SingleLink;

/// Server replies that mean "this server is not the primary you want":
/// drop the connection and reconnect to the address.
const ROLE_ERRORS: [&str; 3] = ["READONLY", "LOADING", "MASTERDOWN"];

/// The connection to Redis: one server, or a cluster. Cheap to clone:
/// clones share the connection.
#[derive(Clone)]
pub(crate) enum Link {
    Single(SingleLink),
    Cluster(ClusterLink),
}

impl Link {
    /// A link to the server of `client`; it connects on first use.
    pub(crate) fn single(
        client: redis::Client,
        response_timeout: std::time::Duration,
        connect_timeout: std::time::Duration,
    ) -> Result<Self, RedisError> {
        Ok(Self::Single(SingleLink::new(
            client,
            response_timeout,
            connect_timeout,
        )?))
    }

    /// A link to the cluster of `spec`; it connects on first use.
    pub(crate) fn cluster(spec: ClusterSpec) -> Self {
        Self::Cluster(ClusterLink::new(spec))
    }

    /// True for a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Where Pub/Sub connections (waits, cancellations) come from.
    pub(crate) fn notices(&self) -> crate::notices::NoticeSource {
        match self {
            Self::Single(l) => crate::notices::NoticeSource::Single(l.client().clone()),
            Self::Cluster(l) => crate::notices::NoticeSource::Cluster(l.spec().clone()),
        }
    }

    /// A connection to each master: the one server, or each of the
    /// cluster's masters as the slot map has them now. For commands about
    /// the servers (`INFO`), and walks of the keyspace (`SCAN`).
    pub(crate) async fn masters(&self) -> Result<Vec<Node>, RedisError> {
        match self {
            Self::Single(l) => Ok(vec![Node::Single(l.clone())]),
            Self::Cluster(l) => l.masters().await,
        }
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(l) => l.req_packed_command(cmd),
            Self::Cluster(l) => l.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(l) => l.req_packed_commands(cmd, offset, count),
            Self::Cluster(l) => l.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(l) => l.get_db(),
            Self::Cluster(_) => 0,
        }
    }
}

/// The error codes of `e`, including those inside a pipeline or a
/// transaction that Redis aborted.
pub(crate) fn server_codes(e: &RedisError) -> Vec<String> {
    match e.clone().into_server_errors() {
        Some(errors) => errors.iter().map(|(_, s)| s.code().to_owned()).collect(),
        None => e.code().map(str::to_owned).into_iter().collect(),
    }
}

/// True for a reply that says the server is not (or not yet) a writable
/// primary.
pub(crate) fn is_role_error(e: &RedisError) -> bool {
    server_codes(e)
        .iter()
        .any(|code| ROLE_ERRORS.contains(&code.as_str()))
}

/// True when the connection failed (refused, dropped), as opposed to the
/// server answering with an error or a command timing out.
fn is_connection_failure(e: &RedisError) -> bool {
    e.is_connection_refusal() || e.is_connection_dropped() || ferry_broker::error::is_maxclients(e)
}
