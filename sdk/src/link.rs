//! [`Link`]: the connection every client and worker command goes through.
//! It wraps redis-rs's auto-reconnecting [`ConnectionManager`] with what
//! production Redis needs:
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

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// Longest wait between reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);
/// Added to the wait per connection failure in a row.
const RECONNECT_STEP: Duration = Duration::from_millis(50);

/// Server replies that mean "this server is not the primary you want":
/// drop the connection and reconnect to the address.
const ROLE_ERRORS: [&str; 3] = ["READONLY", "LOADING", "MASTERDOWN"];

/// A connection to Redis that follows failovers, sends a command once more
/// when that is safe, and backs off reconnects. Cheap to clone: clones
/// share one multiplexed connection.
#[derive(Clone)]
pub(crate) struct Link {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    response_timeout: Duration,
    connect_timeout: Duration,
    current: RwLock<Current>,
    /// Connection failures in a row; 0 on the hot path, so that a healthy
    /// link never takes the backoff lock.
    failing: AtomicU32,
    backoff: Mutex<Backoff>,
}

/// The connection in use and its generation, so that many commands failing
/// on one connection replace it once.
struct Current {
    generation: u64,
    manager: ConnectionManager,
}

/// Connection failures in a row, and until when new commands fail fast.
#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
    last: Option<RedisError>,
}

impl Link {
    /// A link to the server of `client`; it connects on first use.
    pub(crate) fn new(
        client: redis::Client,
        response_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, RedisError> {
        let manager = manager(&client, response_timeout, connect_timeout)?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                response_timeout,
                connect_timeout,
                current: RwLock::new(Current {
                    generation: 0,
                    manager,
                }),
                failing: AtomicU32::new(0),
                backoff: Mutex::new(Backoff::default()),
            }),
        })
    }

    /// The `redis::Client` this link connects with (for a connection of
    /// another kind: Pub/Sub).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.shared.client
    }

    fn current(&self) -> (u64, ConnectionManager) {
        let current = self
            .shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        (current.generation, current.manager.clone())
    }

    /// Replaces the connection of `generation` with a new one to the same
    /// address (once, however many commands saw it fail).
    fn replace(&self, generation: u64) {
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if current.generation != generation {
            return;
        }
        match manager(
            &self.shared.client,
            self.shared.response_timeout,
            self.shared.connect_timeout,
        ) {
            Ok(manager) => {
                current.manager = manager;
                current.generation = generation.wrapping_add(1);
            }
            // Only a bad configuration fails here, and that was checked
            // when the link was made; keep the old connection.
            Err(e) => tracing::warn!(error = %e, "cannot open a new redis connection"),
        }
    }

    /// The last connection error, while reconnects are backing off.
    fn backing_off(&self) -> Option<RedisError> {
        if self.shared.failing.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let backoff = self
            .shared
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match backoff.until {
            Some(until) if Instant::now() < until => backoff.last.clone(),
            _ => None,
        }
    }

    /// Notes the outcome of a command for the reconnect backoff.
    fn note<T>(&self, result: &Result<T, RedisError>) {
        let failed = match result {
            Ok(_) => None,
            Err(e) if is_connection_failure(e) => Some(e),
            // The server answered: the connection works.
            Err(_) => None,
        };
        if failed.is_none() && self.shared.failing.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut backoff = self
            .shared
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match failed {
            None => {
                *backoff = Backoff::default();
                self.shared.failing.store(0, Ordering::Relaxed);
            }
            Some(e) => {
                backoff.failures = backoff.failures.saturating_add(1);
                let wait = RECONNECT_STEP
                    .saturating_mul(backoff.failures)
                    .min(MAX_RECONNECT_DELAY);
                backoff.until = Some(Instant::now() + wait);
                backoff.last = Some(e.clone());
                self.shared
                    .failing
                    .store(backoff.failures, Ordering::Relaxed);
            }
        }
    }

    /// Runs `send` on the current connection and, where the failure allows
    /// it, once more on a fresh one.
    async fn run<T: Reply, F, Fut>(&self, mut send: F) -> Result<T, RedisError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        if let Some(e) = self.backing_off() {
            return Err(e);
        }
        let (generation, manager) = self.current();
        let first = send(manager.clone()).await;
        let result = match first {
            Ok(reply) if !reply.has_role_error() => Ok(reply),
            Ok(_) => {
                self.replace(generation);
                send(self.current().1).await
            }
            Err(e) if is_role_error(&e) => {
                self.replace(generation);
                send(self.current().1).await
            }
            // The manager reconnects by itself after a dropped connection.
            Err(e) if e.is_connection_dropped() => send(manager).await,
            other => other,
        };
        self.note(&result);
        result
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.run(|mut m| async move { m.req_packed_command(cmd).await })
                .await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.run(|mut m| async move { m.req_packed_commands(cmd, offset, count).await })
                .await
        })
    }

    fn get_db(&self) -> i64 {
        self.current().1.get_db()
    }
}

/// A reply that may carry server errors inside it (a pipeline's replies
/// come back as values, errors included).
trait Reply {
    fn has_role_error(&self) -> bool;
}

impl Reply for Value {
    /// The reply itself, or an item of it (a transaction's EXEC reply);
    /// not deeper, so that a large reply of entries is not walked.
    fn has_role_error(&self) -> bool {
        match self {
            Value::Array(items) => items.iter().any(is_role_error_value),
            other => is_role_error_value(other),
        }
    }
}

impl Reply for Vec<Value> {
    fn has_role_error(&self) -> bool {
        self.iter().any(Reply::has_role_error)
    }
}

fn is_role_error_value(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if ROLE_ERRORS.contains(&e.code()))
}

fn manager(
    client: &redis::Client,
    response_timeout: Duration,
    connect_timeout: Duration,
) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(response_timeout))
        .set_connection_timeout(Some(connect_timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
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
