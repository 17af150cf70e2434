//! The raw limit: what any job queue on Redis Streams could reach on this
//! machine, with the `redis` crate directly and one field per entry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::measure::{now_us, payload, CpuMeter, Measured};

const GROUP: &str = "g";

async fn blocking_conn(url: &str) -> MultiplexedConnection {
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect")
}

/// XADDs `n` entries in pipelines of 1,000.
pub async fn fill(conn: &mut MultiplexedConnection, stream: &str, n: u64) {
    let mut seq = 0;
    while seq < n {
        let mut pipe = redis::pipe();
        for _ in 0..1000.min(n - seq) {
            pipe.cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("payload")
                .arg(payload(seq, now_us()))
                .ignore();
            seq += 1;
        }
        pipe.query_async::<()>(conn).await.expect("xadd");
    }
}

async fn create_group(conn: &mut MultiplexedConnection, stream: &str) {
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
}

/// Entry ids (and the `sent_us` of each payload) of an XREADGROUP reply.
fn parse_read(v: &Value) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Value::Array(streams) = v else { return out };
    for s in streams {
        let Value::Array(kv) = s else { continue };
        let Some(Value::Array(entries)) = kv.get(1) else {
            continue;
        };
        for e in entries {
            let Value::Array(parts) = e else { continue };
            let id = match parts.first() {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => continue,
            };
            let sent = match parts.get(1) {
                Some(Value::Array(f)) => f
                    .get(1)
                    .and_then(|p| match p {
                        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(sent_us),
                        _ => None,
                    })
                    .unwrap_or(0),
                _ => 0,
            };
            out.push((id, sent));
        }
    }
    out
}

fn sent_us(payload: &str) -> Option<u64> {
    let rest = payload.split("\"sent_us\":").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Adds XACK + XDEL of `ids` (if any) to `pipe`.
fn ack_and_delete(pipe: &mut redis::Pipeline, stream: &str, ids: &[String]) {
    if !ids.is_empty() {
        pipe.cmd("XACK").arg(stream).arg(GROUP).arg(ids).ignore();
        pipe.cmd("XDEL").arg(stream).arg(ids).ignore();
    }
}

/// Consumes until `n` entries were read and acknowledged: XREADGROUP COUNT 100,
/// then XACK + XDEL of those ids pipelined with the next read. Blocks when empty.
async fn consume(
    conn: &mut MultiplexedConnection,
    stream: &str,
    n: u64,
    latencies: Option<&Mutex<Vec<f64>>>,
) {
    let mut done = 0u64;
    let mut pending: Vec<String> = Vec::new();
    while done < n {
        let mut pipe = redis::pipe();
        ack_and_delete(&mut pipe, stream, &pending);
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg("c")
            .arg("COUNT")
            .arg(100)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(stream)
            .arg(">");
        let (v,): (Value,) = pipe.query_async(conn).await.expect("xreadgroup");
        let now = now_us();
        let read = parse_read(&v);
        if let Some(l) = latencies {
            let mut l = l.lock().expect("latencies");
            for (_, sent) in &read {
                l.push(now.saturating_sub(*sent) as f64 / 1000.0);
            }
        }
        done += read.len() as u64;
        pending = read.into_iter().map(|(id, _)| id).collect();
    }
    if !pending.is_empty() {
        let mut pipe = redis::pipe();
        ack_and_delete(&mut pipe, stream, &pending);
        pipe.query_async::<()>(conn).await.expect("ack");
    }
}

/// Pipelined XADD of `n` entries: time and CPU.
pub async fn xadd(conn: &mut MultiplexedConnection, stream: &str, n: u64) -> Measured {
    let meter = CpuMeter::start(conn).await;
    fill(conn, stream, n).await;
    meter.stop(conn).await
}

/// Drains `n` pre-filled entries: (entries per second, CPU).
pub async fn drain(url: &str, conn: &mut MultiplexedConnection, stream: &str, n: u64) -> Measured {
    fill(conn, stream, n).await;
    create_group(conn, stream).await;
    let mut consumer = blocking_conn(url).await;
    let meter = CpuMeter::start(conn).await;
    consume(&mut consumer, stream, n, None).await;
    meter.stop(conn).await
}

/// Producer (pipelined XADD) and consumer at once, until `n` are consumed.
pub async fn lifecycle(
    url: &str,
    conn: &mut MultiplexedConnection,
    stream: &str,
    n: u64,
) -> Measured {
    create_group(conn, stream).await;
    let mut consumer = blocking_conn(url).await;
    let meter = CpuMeter::start(conn).await;
    let mut producer = conn.clone();
    let s = stream.to_owned();
    let produce = tokio::spawn(async move { fill(&mut producer, &s, n).await });
    consume(&mut consumer, stream, n, None).await;
    produce.await.expect("producer");
    meter.stop(conn).await
}

/// XADD at `rate` per second for `secs` while a consumer blocks in
/// XREADGROUP: the latency (ms) from XADD to the consumer reading the entry.
pub async fn latency(
    url: &str,
    conn: &mut MultiplexedConnection,
    stream: &str,
    rate: u64,
    secs: f64,
) -> Vec<f64> {
    create_group(conn, stream).await;
    let total = (rate as f64 * secs) as u64;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let mut consumer = blocking_conn(url).await;
    let (l, s) = (latencies.clone(), stream.to_owned());
    let consume_task =
        tokio::spawn(async move { consume(&mut consumer, &s, total, Some(&l)).await });
    let sent = Arc::new(AtomicU64::new(0));
    paced(rate, total, |seq| {
        let mut c = conn.clone();
        let stream = stream.to_owned();
        let sent = sent.clone();
        async move {
            let _: String = redis::cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("payload")
                .arg(payload(seq, now_us()))
                .query_async(&mut c)
                .await
                .expect("xadd");
            sent.fetch_add(1, Ordering::Relaxed);
        }
    })
    .await;
    consume_task.await.expect("consumer");
    let mut v = latencies.lock().expect("latencies").clone();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Calls `send(seq)` `total` times at `rate` per second, in 1 ms ticks,
/// each send on its own task so a slow reply does not hold back the pace.
pub async fn paced<F, Fut>(rate: u64, total: u64, send: F)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut seq = 0;
    let mut tasks = Vec::with_capacity(total as usize);
    while seq < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while seq < due {
            tasks.push(tokio::spawn(send(seq)));
            seq += 1;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}
