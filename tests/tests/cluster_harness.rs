//! The local Redis Cluster harness (`ferry_tests::cluster`): forming,
//! slot coverage, manual and automatic failover, restart, and live slot
//! migration.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ferry_tests::cluster::{RedisCluster, Role, NODE_TIMEOUT_MS, SLOTS};
use redis::aio::MultiplexedConnection;

async fn keyslot(c: &mut MultiplexedConnection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(c)
        .await
        .unwrap()
}

async fn count(cluster: &RedisCluster, port: u16, slot: u16) -> i64 {
    let mut c = cluster.conn(port).await;
    redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query_async(&mut c)
        .await
        .unwrap()
}

/// The port an ASK or MOVED error redirects to.
fn redirect_port(e: &redis::RedisError) -> u16 {
    let (addr, _slot) = e.redirect_node().expect("a redirection");
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

async fn get(c: &mut MultiplexedConnection, key: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET").arg(key).query_async(c).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_serve_every_slot() {
    let cluster = RedisCluster::start(3, 0).await;
    eprintln!("3 masters formed in {:?}", cluster.formed_in());

    let masters: BTreeSet<u16> = cluster.nodes().iter().map(|n| n.port).collect();
    assert_eq!(masters.len(), 3);
    assert!(cluster.nodes().iter().all(|n| n.role == Role::Master));
    assert_eq!(
        cluster.masters().await.into_iter().collect::<BTreeSet<_>>(),
        masters
    );

    // url() and seeds() name exactly the masters.
    let url = cluster.url();
    let hosts = url
        .strip_prefix("redis+cluster://")
        .expect("redis+cluster:// scheme");
    let url_ports: BTreeSet<u16> = hosts
        .split(',')
        .map(|h| h.strip_prefix("127.0.0.1:").unwrap().parse().unwrap())
        .collect();
    assert_eq!(url_ports, masters);
    let seed_ports: BTreeSet<u16> = cluster
        .seeds()
        .iter()
        .map(|s| {
            s.strip_prefix("redis://127.0.0.1:")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(seed_ports, masters);

    // Every slot is served, each master's share even, the same from every node.
    let mut first_view = None;
    for port in &masters {
        let mut c = cluster.conn(*port).await;
        let ranges: Vec<(u16, u16, (String, u16))> = {
            let v: Vec<redis::Value> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut c)
                .await
                .unwrap();
            v.into_iter()
                .map(|r| {
                    let redis::Value::Array(parts) = r else {
                        panic!("CLUSTER SLOTS entry {r:?}")
                    };
                    let n = |v: &redis::Value| -> i64 { redis::from_redis_value_ref(v).unwrap() };
                    let redis::Value::Array(master) = &parts[2] else {
                        panic!("CLUSTER SLOTS master {:?}", parts[2])
                    };
                    (
                        n(&parts[0]) as u16,
                        n(&parts[1]) as u16,
                        (
                            redis::from_redis_value_ref(&master[0]).unwrap(),
                            n(&master[1]) as u16,
                        ),
                    )
                })
                .collect()
        };
        let mut share = std::collections::BTreeMap::<u16, usize>::new();
        let mut served = vec![false; SLOTS as usize];
        for (first, last, (ip, master)) in &ranges {
            assert_eq!(ip, "127.0.0.1");
            assert!(masters.contains(master), "{ranges:?}");
            for s in *first..=*last {
                assert!(!served[s as usize], "slot {s} twice: {ranges:?}");
                served[s as usize] = true;
            }
            *share.entry(*master).or_default() += usize::from(last - first) + 1;
        }
        assert!(served.iter().all(|s| *s), "node {port}: {ranges:?}");
        assert_eq!(share.len(), 3);
        assert!(
            share.values().all(|n| (5461..=5462).contains(n)),
            "{share:?}"
        );
        match &first_view {
            None => first_view = Some(ranges),
            Some(f) => assert_eq!(f, &ranges, "node {port} disagrees"),
        }
    }
    let ranges = first_view.unwrap();
    for (first, last, (_, master)) in &ranges {
        for slot in [*first, (first + last) / 2, *last] {
            assert_eq!(cluster.master_of_slot(slot).await, *master);
        }
    }

    // Spot checks: a key of the slot can be written on its master only.
    for slot in (0..SLOTS).step_by(1024).chain([SLOTS - 1]) {
        let master = cluster.master_of_slot(slot).await;
        let key = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| RedisCluster::slot_of(k) == slot)
            .unwrap();
        let mut c = cluster.conn(master).await;
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("v")
            .query_async(&mut c)
            .await
            .unwrap();
        for other in masters.iter().filter(|p| **p != master) {
            let err = get(&mut cluster.conn(*other).await, &key)
                .await
                .unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("moved"),
                "{other}: {err}"
            );
        }
    }

    // slot_of agrees with CLUSTER KEYSLOT, hash tags included.
    let mut c = cluster.conn(*masters.iter().next().unwrap()).await;
    for key in [
        "foo",
        "ferry:{q}:stream",
        "{user1000}.following",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "foo{bar}{zap}",
        "{}",
        "",
        "ünïcode{ключ}",
    ] {
        assert_eq!(
            RedisCluster::slot_of(key),
            keyslot(&mut c, key).await,
            "{key:?}"
        );
    }
    for i in 0..2000 {
        let key = format!("key:{i}:{{tag{}}}", i % 7);
        assert_eq!(RedisCluster::slot_of(&key), keyslot(&mut c, &key).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failover_moves_the_key_to_the_new_master() {
    let cluster = RedisCluster::start(3, 1).await;
    eprintln!("3 masters + 3 replicas formed in {:?}", cluster.formed_in());
    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.masters().await.len(), 3);

    let key = "ferry:{orders}:stream";
    let slot = RedisCluster::slot_of(key);
    let old = cluster.master_of_slot(slot).await;
    let mut c = cluster.conn(old).await;
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("before")
        .query_async(&mut c)
        .await
        .unwrap();
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(acked, 1, "the replica acknowledged the write");

    let replica = cluster.replicas_of(old)[0];
    let t = Instant::now();
    cluster.failover(replica).await;
    eprintln!("manual failover {old} -> {replica} took {:?}", t.elapsed());

    let new = cluster.master_of_slot(slot).await;
    assert_eq!(new, replica);
    let masters = cluster.masters().await;
    assert!(
        masters.contains(&replica) && !masters.contains(&old),
        "{masters:?}"
    );
    // The node the slot map names serves the key; the old master redirects.
    assert_eq!(
        get(&mut cluster.conn(new).await, key)
            .await
            .unwrap()
            .as_deref(),
        Some("before")
    );
    let err = get(&mut cluster.conn(old).await, key).await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("moved"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_master_is_replaced_by_its_replica() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let slot = RedisCluster::slot_of("{jobs}");
    let master = cluster.master_of_slot(slot).await;
    let replica = cluster.replicas_of(master)[0];

    let t = Instant::now();
    cluster.kill(master);
    // PFAIL after the node timeout, FAIL once a majority agrees, then the
    // replica's election (0.5-1 s delay): a few node timeouts in all.
    let deadline = Instant::now() + Duration::from_millis(NODE_TIMEOUT_MS * 10);
    loop {
        let mut c = cluster.conn(replica).await;
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut c)
            .await
            .unwrap();
        if info.contains("role:master") && cluster.master_of_slot(slot).await == replica {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica {replica} not promoted within {:?} of killing {master}",
            deadline - t
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "replica {replica} promoted {:?} after SIGKILL of master {master} (node timeout {NODE_TIMEOUT_MS} ms)",
        t.elapsed()
    );
    cluster.wait_ok().await;
    eprintln!("cluster ok {:?} after the kill", t.elapsed());

    // The old master rejoins (same port, same nodes.conf) as a replica.
    let t = Instant::now();
    cluster.restart(master).await;
    eprintln!("restarted {master} rejoined in {:?}", t.elapsed());
    assert_ne!(
        cluster
            .nodes()
            .iter()
            .find(|n| n.port == master)
            .unwrap()
            .pid,
        0
    );
    let masters = cluster.masters().await;
    assert_eq!(masters.len(), 3, "{masters:?}");
    assert!(!masters.contains(&master), "{masters:?}");
    assert_eq!(cluster.master_of_slot(slot).await, replica);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrated_slot_keeps_every_key() {
    let cluster = RedisCluster::start(3, 0).await;
    let keys: Vec<String> = (0..500)
        .map(|i| format!("ferry:{{busy}}:job:{i}"))
        .collect();
    let slot = RedisCluster::slot_of(&keys[0]);
    let source = cluster.master_of_slot(slot).await;
    let target = cluster
        .masters()
        .await
        .into_iter()
        .find(|p| *p != source)
        .unwrap();

    let mut src = cluster.conn(source).await;
    for k in &keys {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(format!("v-{k}"))
            .query_async(&mut src)
            .await
            .unwrap();
    }
    let t = Instant::now();
    cluster.migrate_slot(slot, target).await;
    eprintln!(
        "migrated 500 keys of slot {slot} {source} -> {target} in {:?}",
        t.elapsed()
    );

    assert_eq!(cluster.master_of_slot(slot).await, target);
    let mut dst = cluster.conn(target).await;

    assert_eq!(count(&cluster, target, slot).await, 500);
    assert_eq!(count(&cluster, source, slot).await, 0);
    for k in &keys {
        assert_eq!(keyslot(&mut dst, k).await, slot);
        assert_eq!(get(&mut dst, k).await.unwrap(), Some(format!("v-{k}")));
        let err = get(&mut src, k).await.unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("moved"),
            "{k}: {err}"
        );
    }
    cluster.wait_ok().await;

    // And back, slowly, with writes going on meanwhile: new keys get ASK
    // from the source during the migration, and all end up on the source.
    let writer = {
        let (ports, slot) = ((source, target), slot);
        tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..200 {
                let key = format!("ferry:{{busy}}:new:{i}");
                // Try the current owner, follow one ASK or MOVED.
                let mut port = ports.1;
                for _ in 0..5 {
                    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                        .unwrap()
                        .get_multiplexed_async_connection()
                        .await
                        .unwrap();
                    let r: redis::RedisResult<()> = redis::cmd("SET")
                        .arg(&key)
                        .arg("n")
                        .query_async(&mut c)
                        .await;
                    match r {
                        Ok(()) => {
                            written.push(key.clone());
                            break;
                        }
                        Err(e) if e.to_string().to_lowercase().starts_with("ask") => {
                            port = redirect_port(&e);
                            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                                .unwrap()
                                .get_multiplexed_async_connection()
                                .await
                                .unwrap();
                            let mut p = redis::pipe();
                            p.cmd("ASKING")
                                .ignore()
                                .cmd("SET")
                                .arg(&key)
                                .arg("n")
                                .ignore();
                            let _: () = p.query_async(&mut c).await.unwrap();
                            written.push(key.clone());
                            break;
                        }
                        Err(e) if e.to_string().to_lowercase().starts_with("moved") => {
                            port = redirect_port(&e);
                        }
                        Err(e) => panic!("SET {key} on {port} (slot {slot}): {e}"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            written
        })
    };
    let t = Instant::now();
    cluster
        .migrate_slot_slowly(slot, source, 5, Duration::from_millis(5))
        .await;
    eprintln!("slow migration back took {:?}", t.elapsed());
    let written = writer.await.unwrap();
    assert_eq!(cluster.master_of_slot(slot).await, source);
    let moved_back = count(&cluster, source, slot).await;
    // Writes after the migration ended went to the source directly (MOVED).
    assert_eq!(moved_back, 500 + written.len() as i64);
    assert_eq!(written.len(), 200);
    assert_eq!(count(&cluster, target, slot).await, 0);
}
