//! Reading a queue's events stream (`<prefix>:<queue>:events`) the way a
//! test checks what happened, and when, on the server's clock.

use std::collections::HashMap;

use redis::aio::MultiplexedConnection;

/// One entry of an events stream: the server time (ms) of its entry id,
/// its `event` (started, succeeded, recovered, ...) and its job `id`.
pub type Event = (u64, String, String);

/// Every entry of the events stream `key` that names an event and a job,
/// in order (by entry id): (server ms, event, job id).
pub async fn all(conn: &mut MultiplexedConnection, key: &str) -> Vec<Event> {
    let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    entries
        .into_iter()
        .filter_map(|(id, f)| {
            let ms = id.split('-').next()?.parse().ok()?;
            Some((ms, f.get("event")?.clone(), f.get("id")?.clone()))
        })
        .collect()
}

/// The `started` events of the stream `key`, in order: (server ms, job id).
pub async fn started(conn: &mut MultiplexedConnection, key: &str) -> Vec<(u64, String)> {
    all(conn, key)
        .await
        .into_iter()
        .filter(|(_, event, _)| event == "started")
        .map(|(ms, _, id)| (ms, id))
        .collect()
}

/// The server time (ms) of every `started` event of the stream `key`, in
/// order.
pub async fn start_times(conn: &mut MultiplexedConnection, key: &str) -> Vec<u64> {
    started(conn, key)
        .await
        .into_iter()
        .map(|(ms, _)| ms)
        .collect()
}
