//! The Lua scripts of the queue protocol, one per atomic operation (`broker/lua/*.lua`).
//!
//! Each script opens with its contract (KEYS, ARGV, reply). Helpers shared
//! by several scripts live in `broker/lua/shared/` and are prepended to the
//! scripts that use them (Redis scripts cannot include files). They are called
//! by SHA (`EVALSHA`); the redis crate loads a script on `NOSCRIPT`, so a
//! restarted Redis with an empty script cache is handled.

use std::sync::LazyLock;

use redis::Script;

/// `shared/group_state.lua`: the consumer group's state and entry-id helpers.
macro_rules! with_group_state {
    ($file:literal) => {
        concat!(
            include_str!("../lua/shared/group_state.lua"),
            include_str!($file)
        )
    };
}

/// `group_state.lua` and `shared/remove_done.lua`: bulk removal of finished entries.
macro_rules! with_remove_done {
    ($file:literal) => {
        concat!(
            include_str!("../lua/shared/group_state.lua"),
            include_str!("../lua/shared/remove_done.lua"),
            include_str!($file)
        )
    };
}

/// `claim.lua`: strict-priority XREADGROUP over the four streams, one round trip.
pub static CLAIM: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/claim.lua")));
/// `claim_counts.lua`: how many entries to claim from each stream (strict priority).
pub static CLAIM_COUNTS: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_group_state!("../lua/claim_counts.lua")));
/// `ack.lua`: acknowledge and remove the entries this consumer still owns.
pub static ACK: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_remove_done!("../lua/ack.lua")));
/// `retry.lua`: stream entry -> delayed set.
pub static RETRY: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_remove_done!("../lua/retry.lua")));
/// `dead_letter.lua`: stream entry -> dead-letter stream.
pub static DEAD_LETTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_remove_done!("../lua/dead_letter.lua")));
/// `promote.lua`: due delayed jobs -> their priority streams.
pub static PROMOTE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/promote.lua")));
/// `recover.lua`: XAUTOCLAIM of entries idle past the lease; poison entries -> dead-letter.
pub static RECOVER: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_remove_done!("../lua/recover.lua")));
/// `renew.lua`: reset the idle time of entries this consumer still owns.
pub static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/renew.lua")));
/// `remove_idle_consumers.lua`: XGROUP DELCONSUMER of idle consumers with nothing pending.
pub static REMOVE_IDLE_CONSUMERS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/remove_idle_consumers.lua")));
/// `start_suspect.lua`: count the delivery of a suspect entry as it starts.
pub static START_SUSPECT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/start_suspect.lua")));
/// `replay.lua`: dead-letter entry -> its priority stream, attempt 1.
pub static REPLAY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/replay.lua")));

/// Every script with its file name, for loading them all at start-up and in tests.
pub fn all() -> [(&'static str, &'static Script); 11] {
    [
        ("claim.lua", &CLAIM),
        ("claim_counts.lua", &CLAIM_COUNTS),
        ("ack.lua", &ACK),
        ("retry.lua", &RETRY),
        ("dead_letter.lua", &DEAD_LETTER),
        ("promote.lua", &PROMOTE),
        ("recover.lua", &RECOVER),
        ("renew.lua", &RENEW),
        ("remove_idle_consumers.lua", &REMOVE_IDLE_CONSUMERS),
        ("start_suspect.lua", &START_SUSPECT),
        ("replay.lua", &REPLAY),
    ]
}
