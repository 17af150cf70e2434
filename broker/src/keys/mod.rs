//! Every Redis key name Ferry uses, and the validated names they are built
//! from. Nothing else in Ferry builds key strings.
//!
//! All keys of one queue share the hash tag `{queue}`, so every script that
//! touches a queue addresses a single Redis Cluster slot.

use std::fmt;

use crate::error::ConfigError;
use crate::priority::Priority;

/// The default namespace prefix for every key.
pub const DEFAULT_PREFIX: &str = "ferry";

/// The consumer group every worker of a queue reads through.
pub const GROUP: &str = "workers";

/// Longest queue name or prefix accepted.
pub const MAX_NAME_LEN: usize = 128;

/// True for `[A-Za-z0-9._-]{1,128}`: no spaces, braces (hash tags) or colons
/// (the key separator).
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A validated queue name: `[A-Za-z0-9._-]{1,128}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueName(String);

impl QueueName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidQueueName`] when the name is empty, longer than
    /// 128 bytes, or holds a character outside `[A-Za-z0-9._-]`.
    pub fn new(name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        if is_valid_name(&name) {
            Ok(Self(name))
        } else {
            Err(ConfigError::InvalidQueueName(name))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated key namespace prefix: `[A-Za-z0-9._-]{1,128}`, `ferry` by
/// default. Producers and workers of a queue must use the same one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix(String);

impl Prefix {
    /// Validates `prefix`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidPrefix`] for an empty, over-long or ill-formed prefix.
    pub fn new(prefix: impl Into<String>) -> Result<Self, ConfigError> {
        let prefix = prefix.into();
        if is_valid_name(&prefix) {
            Ok(Self(prefix))
        } else {
            Err(ConfigError::InvalidPrefix(prefix))
        }
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Prefix {
    /// [`DEFAULT_PREFIX`].
    fn default() -> Self {
        Self(DEFAULT_PREFIX.to_owned())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Positions of the non-stream keys in [`Keys::all`], after the four
/// streams, in the order scripts need them (a script is given the keys up
/// to the last one it uses: the hot ones take the fewest).
const STATS: usize = 4;
const DELAYED: usize = 5;
const DEAD: usize = 6;
const SETTINGS: usize = 7;
const INDEX: usize = 8;
const SCHEDULED: usize = 9;
const RESULTS: usize = 10;
const RETENTION: usize = 11;
const CANCELS: usize = 12;
const WORKERS: usize = 13;
const PROGRESS: usize = 14;
const TIMING: usize = 15;
const EVENTS: usize = 16;

/// The key names of one queue, `{prefix}:{{{queue}}}:{suffix}`, built once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    queue: QueueName,
    /// The four streams (highest priority first), stats, delayed, dead,
    /// settings, index, scheduled, results, retention, cancels, workers,
    /// progress, timing, events: the KEYS of the scripts, in this order
    /// (`lua/shared/queue.lua`).
    all: [String; 17],
}

mod waits;

impl Keys {
    /// Key names for `queue` under the namespace `prefix`.
    pub fn new(prefix: &Prefix, queue: QueueName) -> Self {
        let base = format!("{prefix}:{{{queue}}}");
        let [critical, high, normal, low] = Priority::ALL.map(|p| format!("{base}:{}", p.as_str()));
        let all = [
            critical,
            high,
            normal,
            low,
            format!("{base}:stats"),
            format!("{base}:delayed"),
            format!("{base}:dead"),
            format!("{base}:settings"),
            format!("{base}:index"),
            format!("{base}:scheduled"),
            format!("{base}:results"),
            format!("{base}:retention"),
            format!("{base}:cancels"),
            format!("{base}:workers"),
            format!("{base}:progress"),
            format!("{base}:timing"),
            format!("{base}:events"),
        ];
        Self { queue, all }
    }

    /// The queue these keys belong to.
    pub fn queue(&self) -> &QueueName {
        &self.queue
    }

    /// STREAM of ready and running jobs of one priority, read through consumer group [`GROUP`].
    pub fn stream(&self, priority: Priority) -> &str {
        &self.all[priority.index()]
    }

    /// The four priority STREAMs, highest priority first.
    pub fn streams(&self) -> &[String] {
        &self.all[..4]
    }

    /// ZSET of delayed and retrying jobs; member = job id, score = run-at
    /// (ms since epoch). (Before 0.6 the member was the envelope JSON;
    /// such members are still promoted.)
    pub fn delayed(&self) -> &str {
        &self.all[DELAYED]
    }

    /// HASH of the envelopes of delayed and retrying jobs: field = job id,
    /// value = envelope JSON (with `priority`).
    pub fn scheduled(&self) -> &str {
        &self.all[SCHEDULED]
    }

    /// HASH of the queue's settings: `paused` (`1` while paused),
    /// `max_depth`, `retention_ms`, `retention_count`.
    pub fn settings(&self) -> &str {
        &self.all[SETTINGS]
    }

    /// HASH locating jobs whose id does not name their entry (a job that
    /// moved, or was given its id): field = job id, value =
    /// `<priority>-<entry id>` (in that stream) or `dead-<entry id>` (in
    /// the dead-letter stream).
    pub fn index(&self) -> &str {
        &self.all[INDEX]
    }

    /// HASH of finished jobs' records: field = job id, value = record JSON.
    pub fn results(&self) -> &str {
        &self.all[RESULTS]
    }

    /// ZSET of the same job ids as [`Keys::results`], scored by when each
    /// record expires (ms since epoch).
    pub fn retention(&self) -> &str {
        &self.all[RETENTION]
    }

    /// HASH of cancellations asked for running jobs: field = job id, value
    /// = when (ms); removed when the job ends (cancelled).
    pub fn cancels(&self) -> &str {
        &self.all[CANCELS]
    }

    /// ZSET of the live workers serving the queue: member = consumer name,
    /// score = when its registration expires (ms, server clock).
    pub fn workers(&self) -> &str {
        &self.all[WORKERS]
    }

    /// HASH of running jobs' last progress: field = job id, value = JSON
    /// (`at`, `percent`, `info`); removed when the job ends.
    pub fn progress(&self) -> &str {
        &self.all[PROGRESS]
    }

    /// HASH of per-minute counts and histograms of the last minutes: field
    /// `<minute>:<metric>` (minute = ms since the epoch / 60,000, server
    /// clock; metrics `n` completed, `f` failed for good, `t` retried, `c`
    /// cancelled, `ws`/`rs` wait/run time sums in ms, `w<k>`/`r<k>` wait/run
    /// time histogram buckets), the same per priority as
    /// `<minute>:<priority>:<metric>`, the running totals since the queue
    /// began as `all:<priority>:<metric>` (completed jobs: `n`, `ws`, `rs`,
    /// `w<k>`, `r<k>`), and `minute`, the last minute written.
    pub fn timing(&self) -> &str {
        &self.all[TIMING]
    }

    /// STREAM of lifecycle events (only while the queue's `events` setting
    /// is on; capped at its length): fields `event` (enqueued, started,
    /// progress, retrying, succeeded, dead, cancelled, recovered), `id`
    /// (the job), and per event `attempt`, `worker`, `error`, `progress`.
    pub fn events(&self) -> &str {
        &self.all[EVENTS]
    }

    /// STRING: worker `consumer`'s registration (JSON), with a TTL its
    /// heartbeat renews.
    pub fn worker(&self, consumer: &str) -> String {
        let base = self.all[STATS].strip_suffix(":stats").unwrap_or_default();
        format!("{base}:worker:{consumer}")
    }

    /// HASH: uniqueness locks: field = key, value = `<lifetime>:<job id>`
    /// (`started`, `finished`, `ttl`, `debounce`); a lock holds only while
    /// its job is in the state its lifetime names.
    pub fn unique(&self) -> String {
        let base = self.all[STATS].strip_suffix(":stats").unwrap_or_default();
        format!("{base}:unique")
    }

    /// ZSET: the same keys, score = when to look at the lock again (ms):
    /// a throttle's end, else an hour on (locks whose job ended are
    /// dropped then).
    pub fn unique_expiry(&self) -> String {
        let base = self.all[STATS].strip_suffix(":stats").unwrap_or_default();
        format!("{base}:unique_expiry")
    }

    /// ZSET: the queue's schedules, member = name, score = the next tick
    /// in ms by the server's clock (`inf` while paused).
    pub fn schedules(&self) -> String {
        let base = self.all[STATS].strip_suffix(":stats").unwrap_or_default();
        format!("{base}:schedules")
    }

    /// HASH: schedule `name`: its `spec`, the job it enqueues (`type`,
    /// `payload`, `priority`, `max_retries`), `paused`, `created_at`,
    /// `updated_at`, `last_tick`, `last_job`, `last_fired_at`.
    pub fn schedule(&self, name: &crate::schedules::ScheduleName) -> String {
        let base = self.all[STATS].strip_suffix(":stats").unwrap_or_default();
        format!("{base}:schedule:{name}")
    }

    /// HASH: the queue's concurrency limits by type and key (`type:<T>`,
    /// `key:<K>`, and `key`: every key's where it has none of its own);
    /// the queue-wide one is the settings field `concurrency`.
    pub fn limits(&self) -> String {
        self.derived("limits")
    }

    /// HASH: the slots held of each concurrency gate (`key:<K>`,
    /// `type:<T>`): the jobs in the streams under that limit.
    pub fn gates(&self) -> String {
        self.derived("gates")
    }

    /// HASH: job id -> `<slots held>\n<gate>[\n<gate>]`, while a job under
    /// a concurrency limit waits at a gate or holds slots.
    pub fn gated(&self) -> String {
        self.derived("gated")
    }

    /// LIST: the ids of the jobs waiting at concurrency gate `gate`
    /// (`key:<K>` or `type:<T>`), oldest first; their envelopes are in
    /// [`Keys::scheduled`].
    pub fn gate(&self, gate: &str) -> String {
        self.derived(&format!("gate:{gate}"))
    }

    /// HASH: the rate limits of types and keys (`type:<T>`, `key:<K>`,
    /// and `key`: every key's where it has none of its own) as `<n>
    /// <period ms> <burst>`, and the holds a handler put on them
    /// (`hold:<gate>` -> the server ms it ends); the queue-wide limit is
    /// the settings field `rate_limit`.
    pub fn rates(&self) -> String {
        self.derived("rates")
    }

    /// STRING: rate gate `gate`'s GCRA state (its theoretical arrival
    /// time, server ms), expiring once that has passed.
    pub fn rate_state(&self, gate: &str) -> String {
        self.derived(&format!("rate:{gate}"))
    }

    /// LIST: the ids of the jobs parked at rate gate `gate` (`key:<K>` or
    /// `type:<T>`), oldest first; their envelopes are in
    /// [`Keys::scheduled`].
    pub fn rate_wait(&self, gate: &str) -> String {
        self.derived(&format!("rate_wait:{gate}"))
    }

    /// ZSET: rate gate -> when a worker's promoter next lets the jobs
    /// parked there go on (server ms).
    pub fn rate_wakes(&self) -> String {
        self.derived("rate_wakes")
    }

    /// The namespace prefix these keys are under.
    pub fn prefix(&self) -> Prefix {
        let tail = format!(":{{{}}}:stats", self.queue);
        Prefix(
            self.all[STATS]
                .strip_suffix(&tail)
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// `{prefix}:{{{queue}}}:{suffix}`.
    fn derived(&self, suffix: &str) -> String {
        let base = self.all[STATS].strip_suffix(":stats").unwrap_or_default();
        format!("{base}:{suffix}")
    }

    /// The Pub/Sub channel on which `cancel.lua` tells workers to cancel a
    /// running job (message = job id).
    pub fn cancel_channel(&self) -> String {
        let base = self.all[STATS].strip_suffix(":stats").unwrap_or_default();
        format!("{base}:cancel")
    }

    /// The Pub/Sub channel on which scripts announce finished jobs:
    /// `<state> <job id> <job id> ...`.
    pub fn finished_channel(&self) -> String {
        let base = self.all[STATS].strip_suffix(":stats").unwrap_or_default();
        format!("{base}:finished")
    }

    /// STREAM of dead-lettered jobs: the original fields plus `error`, `failed_at`, `priority`.
    pub fn dead(&self) -> &str {
        &self.all[DEAD]
    }

    /// HASH of counters (see [`counter`](crate::stats::counter)).
    pub fn stats(&self) -> &str {
        &self.all[STATS]
    }

    /// HASH recording which chunks of the batch enqueued under idempotency
    /// key `key` were written (field = chunk number); it expires a day
    /// after the batch's last write.
    pub fn batch(&self, key: &crate::batch::BatchKey) -> String {
        let base = self.all[STATS].strip_suffix(":stats").unwrap_or_default();
        format!("{base}:batch:{key}")
    }

    /// Every key of the queue, in the order the scripts take them as KEYS:
    /// the four streams (highest priority first), stats, delayed, dead,
    /// settings, index, scheduled, results, retention, cancels, workers,
    /// progress, timing, events.
    pub fn all(&self) -> &[String; 17] {
        &self.all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = Keys::new(&Prefix::default(), QueueName::new("emails").unwrap());
        assert_eq!(keys.stream(Priority::Critical), "ferry:{emails}:critical");
        assert_eq!(keys.stream(Priority::Low), "ferry:{emails}:low");
        assert_eq!(keys.delayed(), "ferry:{emails}:delayed");
        assert_eq!(keys.dead(), "ferry:{emails}:dead");
        assert_eq!(keys.stats(), "ferry:{emails}:stats");
        let batch = crate::batch::BatchKey::new("b-1").unwrap();
        assert_eq!(keys.batch(&batch), "ferry:{emails}:batch:b-1");
        assert_eq!(keys.streams().len(), 4);
        assert!(keys.all().iter().all(|k| k.contains("{emails}")));
    }

    #[test]
    fn queue_names_and_prefixes_are_validated() {
        for good in ["a", "emails", "A.b_c-9", &"x".repeat(128)] {
            assert!(QueueName::new(good).is_ok(), "{good}");
            assert!(Prefix::new(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a{b}", "a:b", "é", &"x".repeat(129)] {
            assert!(
                matches!(QueueName::new(bad), Err(ConfigError::InvalidQueueName(_))),
                "{bad}"
            );
            assert!(
                matches!(Prefix::new(bad), Err(ConfigError::InvalidPrefix(_))),
                "{bad}"
            );
        }
        assert_eq!(Prefix::default().as_str(), DEFAULT_PREFIX);
    }
}
