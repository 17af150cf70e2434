//! The Lua scripts of the queue protocol, one per atomic operation (`broker/lua/*.lua`).
//!
//! Each script opens with its contract (KEYS, ARGV, reply). Every script
//! takes the queue's keys in [`Keys::all`] order, up to the last one it uses
//! (the four streams always at KEYS\[1..4\]), and the consumer group as
//! ARGV\[1\]; [`Queue::invoke`] passes them. The rules
//! several scripts share live once, in `broker/lua/shared/`, prepended to
//! the scripts that use them (Redis scripts cannot include files; each
//! script takes only what it uses, since the helpers run on every call):
//!
//! - `queue.lua` (every script): the KEYS layout and the counter names;
//! - `clock.lua`: the server's time (TIME), for every timing decision;
//! - `names.lua`: priority and field names;
//! - `entry_ids.lua`: comparing stream entry ids;
//! - `group_state.lua`: the consumer group's state;
//! - `waiting.lua`: how many entries wait for the group;
//! - `ownership.lua`: whether a consumer still owns a pending entry;
//! - `remove_done.lua`: acknowledging and removing finished entries in bulk;
//! - `settings.lua`: the queue's settings hash (pause, retention);
//! - `records.lua`: finished jobs' records, their retention, and the
//!   notice waiters hear;
//! - `dead_removal.lua`: deleting dead letters with their index fields;
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

/// A script of the protocol, and how many of the queue's keys it takes:
/// [`Keys::all`] up to the last one it uses (4: the streams; 5: and stats;
/// 6: and delayed; 7: and dead; 8: settings; 9: index; 10: scheduled;
/// 11: results; 12: retention; 13: cancels; 14: workers; 15: progress;
/// 16: timing; 17: events).
///
/// [`Keys::all`]: crate::Keys::all
pub(crate) struct QueueScript {
    pub(crate) script: Script,
    /// The script with its notices published by `SPUBLISH` (sharded
    /// Pub/Sub, for a Redis Cluster); `None` when it publishes nothing.
    pub(crate) sharded: Option<Script>,
    pub(crate) keys: usize,
    /// The Lua source, helpers included (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) code: &'static str,
}

/// A script taking `$keys` keys: the shared helpers it names
/// (`lua/shared/<name>.lua`, in the order given: each may use those before
/// it), then `lua/<file>`.
macro_rules! script {
    ($file:literal, $keys:literal: $($shared:ident),*) => {
        LazyLock::new(|| {
            let code = concat!(
                $(include_str!(concat!("../lua/shared/", stringify!($shared), ".lua")),)*
                include_str!(concat!("../lua/", $file)),
            );
            QueueScript { script: Script::new(code), sharded: sharded(code), keys: $keys, code }
        })
    };
}

/// The text that publishes a notice in the scripts, and its sharded form.
const PUBLISH: &str = "redis.call('PUBLISH'";
const SPUBLISH: &str = "redis.call('SPUBLISH'";

/// `code` publishing with `SPUBLISH`, where it publishes.
fn sharded(code: &str) -> Option<Script> {
    code.contains(PUBLISH)
        .then(|| Script::new(&code.replace(PUBLISH, SPUBLISH)))
}

/// `claim.lua`: strict-priority XREADGROUP over the four streams, one round trip.
pub(crate) static CLAIM: LazyLock<QueueScript> =
    script!("claim.lua", 17: queue, clock, settings, names, events, claim_streams);
/// `claim_rated.lua`: claim.lua with each entry through its rate gates (a type's or key's rate limit or hold).
pub(crate) static CLAIM_RATED: LazyLock<QueueScript> = script!("claim_rated.lua", 17:
    queue, clock, settings, names, events, claim_streams, entry_ids, group_state, remove_done, admit, gates, rates);
/// `claim_counts.lua`: how many entries to claim from each stream (strict priority).
pub(crate) static CLAIM_COUNTS: LazyLock<QueueScript> =
    script!("claim_counts.lua", 17: queue, clock, settings, group_state, waiting, events);
/// `enqueue.lua`: one chunk of new jobs: ids checked, depth checked, written.
pub(crate) static ENQUEUE: LazyLock<QueueScript> = script!("enqueue.lua", 17:
    queue, clock, names, group_state, waiting, depth, settings, timing, events, records, admit, gates);
/// `ack.lua`: acknowledge and remove the entries this consumer still owns, with records.
pub(crate) static ACK: LazyLock<QueueScript> = script!("ack.lua", 17:
    queue, clock, names, entry_ids, group_state, ownership, remove_done, settings, timing, events, records, dead_removal, admit, gates, deps, batches);
/// `retry.lua`: stream entry -> delayed set.
pub(crate) static RETRY: LazyLock<QueueScript> = script!("retry.lua", 17:
    queue, clock, names, entry_ids, group_state, ownership, remove_done, settings, timing, events, records, dead_removal, admit, gates, deps, batches);
/// `dead_letter.lua`: stream entry -> dead-letter stream.
pub(crate) static DEAD_LETTER: LazyLock<QueueScript> = script!("dead_letter.lua", 17:
    queue, clock, names, entry_ids, group_state, ownership, remove_done, settings, timing, events, records, dead_removal, dead_letter, admit, gates, deps, batches);
/// `promote.lua`: due delayed jobs -> their priority streams.
pub(crate) static PROMOTE: LazyLock<QueueScript> = script!("promote.lua", 17: queue, clock, names, settings, timing, events, records, admit, gates, rates);
/// `recover.lua`: XAUTOCLAIM of entries idle past the lease; poison entries -> dead-letter.
pub(crate) static RECOVER: LazyLock<QueueScript> = script!("recover.lua", 17:
    queue, clock, names, entry_ids, group_state, remove_done, settings, timing, events, records, dead_removal, dead_letter, admit, gates, deps, batches);
/// `renew.lua`: reset the idle time of entries this consumer still owns.
pub(crate) static RENEW: LazyLock<QueueScript> = script!("renew.lua", 4: queue, ownership);
/// `remove_idle_consumers.lua`: XGROUP DELCONSUMER of idle consumers with nothing pending.
pub(crate) static REMOVE_IDLE_CONSUMERS: LazyLock<QueueScript> =
    script!("remove_idle_consumers.lua", 4: queue);
/// `remove_consumer.lua`: a stopping worker's own XGROUP DELCONSUMER, where it owns nothing.
pub(crate) static REMOVE_CONSUMER: LazyLock<QueueScript> = script!("remove_consumer.lua", 4: queue);
/// `start_suspect.lua`: count the delivery of a suspect entry as it starts.
pub(crate) static START_SUSPECT: LazyLock<QueueScript> =
    script!("start_suspect.lua", 4: queue, ownership);
/// `replay.lua`: dead-letter entry -> its priority stream, attempt 1.
pub(crate) static REPLAY: LazyLock<QueueScript> =
    script!("replay.lua", 10: queue, clock, names, admit, gates);
/// `purge_dead.lua`: delete the oldest dead letters and their index fields.
pub(crate) static PURGE_DEAD: LazyLock<QueueScript> = script!("purge_dead.lua", 17: queue, clock, names, entry_ids, group_state, settings, timing, events, records, dead_removal, admit, gates, deps, batches);
/// `status.lua`: where a job is, by id.
pub(crate) static STATUS: LazyLock<QueueScript> = script!("status.lua", 17: queue, clock, names, entry_ids, group_state, settings, timing, events, records, dead_removal, admit, gates, rates, deps, batches);
/// `progress.lua`: a running job's progress, while it is still this worker's.
pub(crate) static PROGRESS: LazyLock<QueueScript> =
    script!("progress.lua", 17: queue, clock, ownership, settings, events);
/// `record_timing.lua`: a worker's completed jobs into the per-minute stats.
pub(crate) static RECORD_TIMING: LazyLock<QueueScript> =
    script!("record_timing.lua", 16: queue, clock, names, timing);
/// `register_worker.lua`: a live worker's registration, with its TTL.
pub(crate) static REGISTER_WORKER: LazyLock<QueueScript> =
    script!("register_worker.lua", 17: queue, clock);
/// `reprioritise.lua`: a waiting job to another priority, keeping its id.
pub(crate) static REPRIORITISE: LazyLock<QueueScript> =
    script!("reprioritise.lua", 13: queue, names, entry_ids, group_state);
/// `cancel.lua`: cancel a job by id (remove it, or ask its worker).
pub(crate) static CANCEL: LazyLock<QueueScript> = script!("cancel.lua", 17: queue, clock, names, entry_ids, group_state, settings, timing, events, records, dead_removal, admit, gates, rates, deps, batches);
/// `list_jobs.lua`: one page of a queue's jobs in one state.
pub(crate) static LIST_JOBS: LazyLock<QueueScript> =
    script!("list_jobs.lua", 15: queue, clock, names, entry_ids, group_state, admit, gates, rates);
/// `stream_info.lua`: each priority stream's consumer-group state.
pub(crate) static STREAM_INFO: LazyLock<QueueScript> = script!("stream_info.lua", 4: queue, clock);
/// `stats.lua`: depth per priority, delayed, dead and counters, read in one round trip.
pub(crate) static STATS: LazyLock<QueueScript> =
    script!("stats.lua", 8: queue, settings, group_state, waiting);

/// `hold_queue.lua`: no job of the queue, or of a type or key, starts until a time (a handler's rate_limited).
pub(crate) static HOLD_QUEUE: LazyLock<QueueScript> =
    script!("hold_queue.lua", 10: queue, clock, names, admit, gates, rates);
/// `enqueue_unique.lua`: one job under a uniqueness key (KEYS\[18..19\]: the locks, their expiry).
pub(crate) static ENQUEUE_UNIQUE: LazyLock<QueueScript> = script!("enqueue_unique.lua", 17:
    queue, clock, names, entry_ids, group_state, waiting, depth, settings, events, admit, gates);
/// `enqueue_after.lua`: jobs that wait for others of their queue to succeed (one, or a flow).
pub(crate) static ENQUEUE_AFTER: LazyLock<QueueScript> = script!("enqueue_after.lua", 17:
    queue, clock, names, entry_ids, group_state, waiting, depth, settings, timing, events, records, dead_removal, admit, gates, deps, batches, enqueue_jobs);
/// `register_remote.lua`: a job of another queue will wait for jobs of this one.
pub(crate) static REGISTER_REMOTE: LazyLock<QueueScript> = script!("register_remote.lua", 17:
    queue, clock, names, entry_ids, group_state, waiting, depth, settings, timing, events, records, dead_removal, admit, gates, deps, batches, enqueue_jobs);
/// `apply_remote.lua`: another queue's job's outcome for the jobs here that wait for it.
pub(crate) static APPLY_REMOTE: LazyLock<QueueScript> = script!("apply_remote.lua", 17:
    queue, clock, names, entry_ids, group_state, waiting, depth, settings, timing, events, records, dead_removal, admit, gates, deps, batches, enqueue_jobs);
/// `create_batch.lua`: a batch's jobs and callbacks.
pub(crate) static CREATE_BATCH: LazyLock<QueueScript> = script!("create_batch.lua", 17:
    queue, clock, names, entry_ids, group_state, waiting, depth, settings, timing, events, records, dead_removal, admit, gates, deps, batches, enqueue_jobs);
/// `add_to_batch.lua`: jobs added to an open batch.
pub(crate) static ADD_TO_BATCH: LazyLock<QueueScript> = script!("add_to_batch.lua", 17:
    queue, clock, names, entry_ids, group_state, waiting, depth, settings, timing, events, records, dead_removal, admit, gates, deps, batches, enqueue_jobs);
/// `upsert_schedule.lua`: create or replace a schedule (KEYS\[9..10\]: the schedules set, its hash).
pub(crate) static UPSERT_SCHEDULE: LazyLock<QueueScript> =
    script!("upsert_schedule.lua", 8: queue, clock);
/// `schedule_state.lua`: remove, pause or resume a schedule, or record a triggered job.
pub(crate) static SCHEDULE_STATE: LazyLock<QueueScript> =
    script!("schedule_state.lua", 8: queue, clock);
/// `due_schedules.lua`: the schedules due by the server's clock (KEYS\[9\]: the schedules set).
pub(crate) static DUE_SCHEDULES: LazyLock<QueueScript> =
    script!("due_schedules.lua", 8: queue, clock);
/// `fire_schedule.lua`: a due schedule's jobs, once per tick fleet-wide (KEYS\[18..19\]).
pub(crate) static FIRE_SCHEDULE: LazyLock<QueueScript> =
    script!("fire_schedule.lua", 17: queue, clock, names, settings, events, admit, gates);
/// `set_rate_limit.lua`: set or remove a type's or key's rate limit; its parked jobs looked at again.
pub(crate) static SET_RATE_LIMIT: LazyLock<QueueScript> =
    script!("set_rate_limit.lua", 10: queue, clock, names, admit, gates, rates);
/// `drain_gates.lua`: jobs waiting at concurrency gates with free slots -> their streams.
pub(crate) static DRAIN_GATES: LazyLock<QueueScript> =
    script!("drain_gates.lua", 10: queue, names, admit, gates);
/// `repair_gates.lua`: free the concurrency slots of jobs gone without ending.
pub(crate) static REPAIR_GATES: LazyLock<QueueScript> =
    script!("repair_gates.lua", 10: queue, names, admit, gates);

/// Every script with its file name.
fn all() -> [(&'static str, &'static QueueScript); 38] {
    [
        ("repair_gates.lua", &REPAIR_GATES),
        ("drain_gates.lua", &DRAIN_GATES),
        ("hold_queue.lua", &HOLD_QUEUE),
        ("set_rate_limit.lua", &SET_RATE_LIMIT),
        ("enqueue_unique.lua", &ENQUEUE_UNIQUE),
        ("upsert_schedule.lua", &UPSERT_SCHEDULE),
        ("schedule_state.lua", &SCHEDULE_STATE),
        ("due_schedules.lua", &DUE_SCHEDULES),
        ("fire_schedule.lua", &FIRE_SCHEDULE),
        ("list_jobs.lua", &LIST_JOBS),
        ("stream_info.lua", &STREAM_INFO),
        ("record_timing.lua", &RECORD_TIMING),
        ("progress.lua", &PROGRESS),
        ("register_worker.lua", &REGISTER_WORKER),
        ("reprioritise.lua", &REPRIORITISE),
        ("cancel.lua", &CANCEL),
        ("enqueue.lua", &ENQUEUE),
        ("purge_dead.lua", &PURGE_DEAD),
        ("status.lua", &STATUS),
        ("claim.lua", &CLAIM),
        ("claim_rated.lua", &CLAIM_RATED),
        ("enqueue_after.lua", &ENQUEUE_AFTER),
        ("register_remote.lua", &REGISTER_REMOTE),
        ("apply_remote.lua", &APPLY_REMOTE),
        ("create_batch.lua", &CREATE_BATCH),
        ("add_to_batch.lua", &ADD_TO_BATCH),
        ("claim_counts.lua", &CLAIM_COUNTS),
        ("ack.lua", &ACK),
        ("retry.lua", &RETRY),
        ("dead_letter.lua", &DEAD_LETTER),
        ("promote.lua", &PROMOTE),
        ("recover.lua", &RECOVER),
        ("renew.lua", &RENEW),
        ("remove_idle_consumers.lua", &REMOVE_IDLE_CONSUMERS),
        ("remove_consumer.lua", &REMOVE_CONSUMER),
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
    for (name, QueueScript { script, .. }) in all() {
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
    //! other (`lua/shared/queue.lua` and `names.lua` against the Rust constants).

    use crate::envelope::field;
    use crate::priority::Priority;
    use crate::stats::counter;

    const QUEUE_LUA: &str = include_str!("../lua/shared/queue.lua");
    const NAMES_LUA: &str = include_str!("../lua/shared/names.lua");

    /// The quoted strings of the Lua table `local NAME = {...}` in `lua`.
    fn lua_strings(lua: &str, name: &str) -> Vec<String> {
        let start = lua
            .find(&format!("local {name} = {{"))
            .unwrap_or_else(|| panic!("no table {name}"));
        let body = &lua[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        body.split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// True when `lua` has the line `local NAME = 'value'`.
    fn has_string(lua: &str, name: &str, value: &str) -> bool {
        lua.lines()
            .any(|l| l.trim() == format!("local {name} = '{value}'"))
    }

    #[test]
    fn lua_field_names_match_rust() {
        assert_eq!(lua_strings(NAMES_LUA, "ENVELOPE_FIELDS"), field::ENVELOPE);
        for (name, value) in [
            ("ERROR_FIELD", field::ERROR),
            ("FAILED_AT_FIELD", field::FAILED_AT),
            ("PRIORITY_FIELD", field::PRIORITY),
            ("RAW_FIELD", field::RAW),
            ("OMITTED_FIELD", field::OMITTED_FIELDS),
        ] {
            assert!(has_string(NAMES_LUA, name, value), "{name} = '{value}'");
        }
    }

    #[test]
    fn lua_priorities_match_rust() {
        let names: Vec<&str> = Priority::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(lua_strings(NAMES_LUA, "PRIORITIES"), names);
        let index: Vec<String> = Priority::ALL
            .iter()
            .map(|p| format!("{} = {}", p.as_str(), p.script_index()))
            .collect();
        assert!(
            NAMES_LUA.contains(&format!("local PRIORITY_INDEX = {{{}}}", index.join(", "))),
            "PRIORITY_INDEX is {index:?}"
        );
        assert!(NAMES_LUA.contains(&format!(
            "local DEFAULT_PRIORITY = {}",
            Priority::default().script_index()
        )));
    }

    #[test]
    fn every_script_is_given_the_keys_it_uses() {
        // Past the shared layout (queue.lua, always first), a script that
        // names STATS needs 5 keys, DELAYED 6, DEAD 7, SETTINGS 8, ...: a
        // key not passed is nil in Lua, which only fails when that line runs.
        for (name, script) in super::all() {
            let body = script.code.strip_prefix(QUEUE_LUA).expect(name);
            let names: std::collections::HashSet<&str> = body
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .collect();
            let needs = [
                ("STATS", 5),
                ("DELAYED", 6),
                ("DEAD", 7),
                ("SETTINGS", 8),
                ("INDEX", 9),
                ("SCHEDULED", 10),
                ("RESULTS", 11),
                ("RETENTION", 12),
                ("CANCELS", 13),
                ("WORKERS", 14),
                ("PROGRESS", 15),
                ("TIMING", 16),
                ("EVENTS", 17),
            ]
            .iter()
            .filter(|(key, _)| names.contains(key))
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(4);
            assert!(
                script.keys >= needs,
                "{name} uses key {needs} but is given {}",
                script.keys
            );
        }
    }

    #[test]
    fn lua_counters_match_rust() {
        let lua: Vec<&str> = QUEUE_LUA
            .lines()
            .filter_map(|l| l.trim().strip_prefix("local COUNTER_"))
            .collect();
        assert_eq!(lua.len(), counter::ALL.len(), "{lua:?}");
        for name in counter::ALL {
            let line = format!("{} = '{name}'", name.to_uppercase());
            assert!(lua.contains(&line.as_str()), "COUNTER_{line}");
        }
    }
}
