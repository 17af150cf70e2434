//! Every Lua script loads on a real Redis, so a typo fails here first.

use ferry_tests::RedisServer;

#[tokio::test]
async fn every_script_loads() {
    let redis = RedisServer::start().await;
    let mut conn = redis.conn().await;
    let loaded = ferry_broker::scripts::load_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../broker/lua"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".lua"))
            .collect();
    files.sort();
    let mut loaded: Vec<String> = loaded.into_iter().map(str::to_owned).collect();
    loaded.sort();
    assert_eq!(
        loaded, files,
        "every file in broker/lua is a script that loads"
    );
}
