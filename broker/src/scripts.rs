//! The Lua scripts of the queue protocol, one per atomic operation (`broker/lua/*.lua`).
//!
//! Each script opens with its contract (KEYS, ARGV, reply). Every script
//! takes the same KEYS, the queue's seven keys in [`Keys::all`] order, and
//! the consumer group as ARGV\[1\]; [`Queue::invoke`] passes them. The rules
//! several scripts share live once, in `broker/lua/shared/`, prepended to
//! every script (Redis scripts cannot include files):
//!
//! - `queue.lua`: the KEYS layout, priority names, field and counter names;
//! - `entry_ids.lua`: comparing stream entry ids;
//! - `group_state.lua`: the consumer group's state, and how many entries wait;
//! - `ownership.lua`: whether a consumer still owns a pending entry;
//! - `remove_done.lua`: acknowledging and removing finished entries in bulk;
//! - `dead_letter.lua`: which fields a dead letter keeps, its cap and counters.
//!
//! Scripts are called by SHA (`EVALSHA`); the redis crate loads a script on
//! `NOSCRIPT`, so a restarted Redis with an empty script cache is handled.
//!
//! [`Keys::all`]: crate::Keys::all
//! [`Queue::invoke`]: crate::Queue

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::Script;

use crate::error::{Error, Result};

/// A script: the shared helpers, then `lua/<file>`.
macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../lua/shared/queue.lua"),
                include_str!("../lua/shared/entry_ids.lua"),
                include_str!("../lua/shared/group_state.lua"),
                include_str!("../lua/shared/ownership.lua"),
                include_str!("../lua/shared/remove_done.lua"),
                include_str!("../lua/shared/dead_letter.lua"),
                include_str!(concat!("../lua/", $file)),
            ))
        })
    };
}

/// `claim.lua`: strict-priority XREADGROUP over the four streams, one round trip.
pub(crate) static CLAIM: LazyLock<Script> = script!("claim.lua");
/// `claim_counts.lua`: how many entries to claim from each stream (strict priority).
pub(crate) static CLAIM_COUNTS: LazyLock<Script> = script!("claim_counts.lua");
/// `ack.lua`: acknowledge and remove the entries this consumer still owns.
pub(crate) static ACK: LazyLock<Script> = script!("ack.lua");
/// `retry.lua`: stream entry -> delayed set.
pub(crate) static RETRY: LazyLock<Script> = script!("retry.lua");
/// `dead_letter.lua`: stream entry -> dead-letter stream.
pub(crate) static DEAD_LETTER: LazyLock<Script> = script!("dead_letter.lua");
/// `promote.lua`: due delayed jobs -> their priority streams.
pub(crate) static PROMOTE: LazyLock<Script> = script!("promote.lua");
/// `recover.lua`: XAUTOCLAIM of entries idle past the lease; poison entries -> dead-letter.
pub(crate) static RECOVER: LazyLock<Script> = script!("recover.lua");
/// `renew.lua`: reset the idle time of entries this consumer still owns.
pub(crate) static RENEW: LazyLock<Script> = script!("renew.lua");
/// `remove_idle_consumers.lua`: XGROUP DELCONSUMER of idle consumers with nothing pending.
pub(crate) static REMOVE_IDLE_CONSUMERS: LazyLock<Script> = script!("remove_idle_consumers.lua");
/// `start_suspect.lua`: count the delivery of a suspect entry as it starts.
pub(crate) static START_SUSPECT: LazyLock<Script> = script!("start_suspect.lua");
/// `replay.lua`: dead-letter entry -> its priority stream, attempt 1.
pub(crate) static REPLAY: LazyLock<Script> = script!("replay.lua");
/// `stats.lua`: depth per priority, delayed, dead and counters, read in one round trip.
pub(crate) static STATS: LazyLock<Script> = script!("stats.lua");

/// Every script with its file name.
fn all() -> [(&'static str, &'static Script); 12] {
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
        ("stats.lua", &STATS),
    ]
}

/// Loads every script into Redis's script cache (`SCRIPT LOAD`) and checks
/// the SHA Redis computes; returns the file names loaded. Calls load scripts
/// on demand anyway, so this is for a start-up check and for tests: a Lua
/// syntax error fails here, naming the file.
///
/// # Errors
/// [`Error::Script`] naming the script that Redis refused (or whose SHA differs).
pub async fn load_all<C: ConnectionLike + Send>(conn: &mut C) -> Result<Vec<&'static str>> {
    let mut loaded = Vec::new();
    for (name, script) in all() {
        let sha: String = script
            .prepare_invoke()
            .load_async(conn)
            .await
            .map_err(|e| Error::Script {
                name,
                reason: e.to_string(),
            })?;
        if sha != script.get_hash() {
            return Err(Error::Script {
                name,
                reason: format!("redis computed SHA {sha}, expected {}", script.get_hash()),
            });
        }
        loaded.push(name);
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    //! The names the scripts share with the Rust side, checked against each
    //! other (`lua/shared/queue.lua` against the Rust constants).

    use crate::envelope::field;
    use crate::priority::Priority;
    use crate::stats::counter;

    const QUEUE_LUA: &str = include_str!("../lua/shared/queue.lua");

    /// The quoted strings of the Lua table assigned to `name` (`local NAME = {...}`).
    fn lua_strings(name: &str) -> Vec<String> {
        let start = QUEUE_LUA
            .find(&format!("local {name} = {{"))
            .unwrap_or_else(|| panic!("no table {name} in queue.lua"));
        let body = &QUEUE_LUA[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        body.split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn lua_envelope_fields_match_rust() {
        assert_eq!(lua_strings("ENVELOPE_FIELDS"), field::ENVELOPE);
        assert_eq!(
            lua_strings("DEAD_LETTER_FIELDS"),
            [field::ERROR, field::FAILED_AT, field::PRIORITY]
        );
        assert!(QUEUE_LUA.contains(&format!("local RAW_FIELD = '{}'", field::RAW)));
        assert!(QUEUE_LUA.contains(&format!(
            "local OMITTED_FIELD = '{}'",
            field::OMITTED_FIELDS
        )));
    }

    #[test]
    fn lua_priorities_match_rust() {
        let names: Vec<&str> = Priority::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(lua_strings("PRIORITIES"), names);
        let index: Vec<String> = Priority::ALL
            .iter()
            .map(|p| format!("{} = {}", p.as_str(), p.script_index()))
            .collect();
        assert!(
            QUEUE_LUA.contains(&format!("local PRIORITY_INDEX = {{{}}}", index.join(", "))),
            "PRIORITY_INDEX is {index:?}"
        );
        assert!(QUEUE_LUA.contains(&format!(
            "local DEFAULT_PRIORITY = {}",
            Priority::default().script_index()
        )));
    }

    #[test]
    fn lua_counters_match_rust() {
        // `{completed = 'completed', ...}`: each value is its own name.
        assert_eq!(lua_strings("COUNTERS"), counter::ALL);
        for name in counter::ALL {
            assert!(QUEUE_LUA.contains(&format!("{name} = '{name}'")), "{name}");
        }
    }
}
