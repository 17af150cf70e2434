//! Typed jobs: a serde struct with a stable type name and its defaults.

use ferry_broker::Priority;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The queue a job type goes to unless it names another: `default`.
pub const DEFAULT_QUEUE: &str = "default";
/// Retries after the first attempt unless a job type says otherwise: 3.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// A job's arguments: a serde struct with a stable type name, and the
/// defaults producers and workers use for it.
///
/// The type name is written into every entry (`type` field) and chooses the
/// handler. Keep it stable across deploys; renaming the Rust struct is fine.
/// The queue, priority and retries declared here are where
/// [`Client::enqueue`](crate::Client::enqueue) puts the job and which queue
/// a worker serves for its handler, so the queue name is written once;
/// [`EnqueueOptions`](crate::EnqueueOptions) overrides them per call.
///
/// ```
/// use ferry_queue::{Job, Priority};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendWelcome { to: String }
///
/// impl Job for SendWelcome {
///     const TYPE: &'static str = "send_welcome";
///     const QUEUE: &'static str = "emails";      // default: "default"
///     const PRIORITY: Priority = Priority::High; // default: Normal
///     const MAX_RETRIES: u32 = 5;                // default: 3
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The job type name (1 to 128 printable characters).
    const TYPE: &'static str;
    /// The queue it goes to by default (`[A-Za-z0-9._-]{1,128}`).
    const QUEUE: &'static str = DEFAULT_QUEUE;
    /// Its priority by default.
    const PRIORITY: Priority = Priority::Normal;
    /// Retries allowed after the first attempt, by default.
    const MAX_RETRIES: u32 = DEFAULT_MAX_RETRIES;
}
