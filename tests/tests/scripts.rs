//! Every Lua script loads on a real Redis, so a typo fails here first.

use ferry_tests::RedisServer;

#[tokio::test]
async fn every_script_loads() {
    let redis = RedisServer::start().await;
    let mut conn = redis.conn().await;
    for (name, script) in ferry_broker::scripts::all() {
        let sha: String = script
            .prepare_invoke()
            .load_async(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{name} does not load: {e}"));
        assert_eq!(sha, script.get_hash(), "{name}");
    }
}
