//! [`SingleLink`]: the connection to one Redis server (or one address
//! behind which a primary may change).

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::backoff::Reconnects;
use super::{is_role_error, ROLE_ERRORS};

/// A connection to one Redis server that follows failovers behind its
/// address, sends a command once more when that is safe, and backs off
/// reconnects. Cheap to clone: clones share one multiplexed connection.
#[derive(Clone)]
pub(crate) struct SingleLink {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    response_timeout: Duration,
    connect_timeout: Duration,
    current: RwLock<Current>,
    reconnects: Reconnects,
}

/// The connection in use and its generation, so that many commands failing
/// on one connection replace it once.
struct Current {
    generation: u64,
    manager: ConnectionManager,
}

impl SingleLink {
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
                reconnects: Reconnects::default(),
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

    /// Runs `send` on the current connection and, where the failure allows
    /// it, once more on a fresh one.
    async fn run<T: Reply, F, Fut>(&self, mut send: F) -> Result<T, RedisError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        if let Some(e) = self.shared.reconnects.backing_off() {
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
        self.shared.reconnects.note(&result);
        result
    }
}

impl ConnectionLike for SingleLink {
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
