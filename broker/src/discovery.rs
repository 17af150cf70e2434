//! Finding the queues under a prefix: `SCAN` over the keys
//! `<prefix>:{*}:*`, for operators' tools.
//!
//! A queue has no registry: it exists while any of its keys does (its
//! streams, stats, dead letters, settings, records, ...). `SCAN` walks the
//! whole keyspace of the one server connected to, in steps of
//! [`SCAN_COUNT`] keys, without blocking it; a Redis Cluster would need one
//! walk per primary, which Ferry does not support yet.

use std::collections::BTreeSet;

use redis::aio::ConnectionLike;

use crate::error::Result;
use crate::keys::{Prefix, QueueName};

/// Keys `SCAN` looks at per step (its `COUNT` hint).
pub const SCAN_COUNT: usize = 1000;

/// The names of the queues that have at least one key under `prefix`,
/// sorted. Keys under the prefix that are not a queue's (`<prefix>:{x}` not
/// followed by `:`, or a name Ferry would refuse) are ignored.
///
/// Keys are read as bytes, not text: a key that is not UTF-8 never fails
/// the walk. Past `<prefix>:{<queue>}:` a key may hold any bytes (the queue
/// is still found); a queue name that is not UTF-8 is not one Ferry
/// accepts, so its keys are skipped like any other foreign key.
///
/// A full `SCAN` of the keyspace: O(keys in the database), in steps that
/// do not block the server. A key created or deleted during the walk may
/// or may not be seen.
///
/// # Errors
/// [`Error::Redis`](crate::Error::Redis).
pub async fn queue_names<C: ConnectionLike + Send>(
    conn: &mut C,
    prefix: &Prefix,
) -> Result<Vec<QueueName>> {
    let pattern = format!("{prefix}:{{*}}:*");
    let mut names = BTreeSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await?;
        names.extend(keys.iter().filter_map(|k| queue_of(prefix, k)));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(names.into_iter().collect())
}

/// The queue a key `<prefix>:{<queue>}:<rest>` belongs to (`<rest>` any
/// bytes; `None` for a `<queue>` that is not a valid, UTF-8 queue name).
fn queue_of(prefix: &Prefix, key: &[u8]) -> Option<QueueName> {
    let rest = key
        .strip_prefix(prefix.as_str().as_bytes())?
        .strip_prefix(b":{")?;
    let end = rest.windows(2).position(|w| w == b"}:")?;
    let name = std::str::from_utf8(rest.get(..end)?).ok()?;
    QueueName::new(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_read_from_keys() {
        let p = Prefix::default();
        let name = |k: &str| queue_of(&p, k.as_bytes()).map(|q| q.as_str().to_owned());
        assert_eq!(name("ferry:{emails}:normal").as_deref(), Some("emails"));
        assert_eq!(
            name("ferry:{a.b-c_d}:worker:host-1-x").as_deref(),
            Some("a.b-c_d")
        );
        assert_eq!(name("ferry:{emails}"), None);
        assert_eq!(name("ferryx:{emails}:normal"), None);
        assert_eq!(name("ferry:{bad name}:normal"), None);
        assert_eq!(name("other:{emails}:normal"), None);
        // Not UTF-8: after the queue's name it does not matter; in it, the
        // key is not a queue's.
        let bytes = |k: &[u8]| queue_of(&p, k).map(|q| q.as_str().to_owned());
        assert_eq!(bytes(b"ferry:{emails}:\xff\xfe").as_deref(), Some("emails"));
        assert_eq!(bytes(b"ferry:{em\xffails}:normal"), None);
        assert_eq!(bytes(b"ferry:{\xc3}:normal"), None);
        assert_eq!(bytes(b"\xff"), None);
    }
}
