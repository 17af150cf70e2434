//! Pub/Sub connections for the notices scripts publish (finished jobs for
//! waits, cancellations for workers), on one server or on a cluster.
//!
//! On one server, a plain `SUBSCRIBE` connection hears `PUBLISH`. On a
//! Redis Cluster, the scripts publish with `SPUBLISH` (sharded Pub/Sub,
//! Redis 7.0+): a queue's channels carry its hash tag, so a notice stays on
//! the shard of the queue's slot instead of being broadcast to every node
//! over the cluster bus, and the listener `SSUBSCRIBE`s through a RESP3
//! cluster connection, which sends each subscription to the master of the
//! channel's slot. When that master changes (a failover, a slot migration)
//! the server drops the subscription (`sunsubscribe`) or the connection
//! goes: the stream says [`Notice::Lost`], and the listener subscribes
//! again and looks again at what it waits for, as after any reconnect.

use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, RedisError, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::link::ClusterSpec;

/// Where Pub/Sub connections come from ([`Link::notices`](crate::link::Link::notices)).
#[derive(Clone)]
pub(crate) enum NoticeSource {
    Single(redis::Client),
    Cluster(ClusterSpec),
}

/// A notice, or word that notices may have been missed.
pub(crate) enum Notice {
    /// A message on a channel.
    Message { channel: String, payload: Vec<u8> },
    /// The subscriptions were dropped or the connection lost: notices sent
    /// meanwhile are gone; subscribe again on a new connection.
    Lost,
}

/// Subscribes, and pings to find a half-open connection.
pub(crate) enum NoticeSink {
    Single(PubSubSink),
    Cluster(ClusterConnection),
}

/// The notices of the channels subscribed to.
pub(crate) enum NoticeStream {
    Single(PubSubStream),
    Cluster(UnboundedReceiver<PushInfo>),
}

impl NoticeSource {
    /// A new Pub/Sub connection, as its two halves.
    pub(crate) async fn connect(&self) -> Result<(NoticeSink, NoticeStream), RedisError> {
        match self {
            Self::Single(client) => {
                let (sink, stream) = client.get_async_pubsub().await?.split();
                Ok((NoticeSink::Single(sink), NoticeStream::Single(stream)))
            }
            Self::Cluster(spec) => {
                let (tx, rx) = unbounded_channel();
                let conn = spec.client(Some(tx))?.get_async_connection().await?;
                Ok((NoticeSink::Cluster(conn), NoticeStream::Cluster(rx)))
            }
        }
    }
}

impl NoticeSink {
    /// Subscribes to `channel` (`SSUBSCRIBE` on a cluster).
    pub(crate) async fn subscribe(&mut self, channel: &str) -> Result<(), RedisError> {
        match self {
            Self::Single(sink) => sink.subscribe(channel).await,
            Self::Cluster(conn) => conn.ssubscribe(channel).await,
        }
    }

    /// PING (every master, on a cluster).
    pub(crate) async fn ping(&mut self) -> Result<(), RedisError> {
        match self {
            Self::Single(sink) => sink.ping::<Value>().await.map(|_| ()),
            Self::Cluster(conn) => redis::cmd("PING")
                .query_async::<Value>(conn)
                .await
                .map(|_| ()),
        }
    }
}

impl NoticeStream {
    /// The next notice; `None` when the connection closed.
    pub(crate) async fn next(&mut self) -> Option<Notice> {
        match self {
            Self::Single(stream) => {
                let msg = stream.next().await?;
                Some(Notice::Message {
                    channel: msg.get_channel_name().to_owned(),
                    payload: msg.get_payload_bytes().to_vec(),
                })
            }
            Self::Cluster(rx) => loop {
                let push = rx.recv().await?;
                match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        let mut data = push.data.into_iter();
                        let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
                            continue;
                        };
                        let (Ok(channel), Ok(payload)) = (
                            redis::from_redis_value::<String>(channel),
                            redis::from_redis_value::<Vec<u8>>(payload),
                        ) else {
                            continue;
                        };
                        return Some(Notice::Message { channel, payload });
                    }
                    PushKind::Disconnection | PushKind::SUnsubscribe | PushKind::Unsubscribe => {
                        return Some(Notice::Lost)
                    }
                    _ => continue,
                }
            },
        }
    }
}
