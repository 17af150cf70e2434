//! Typed jobs: a serde struct with a stable type name.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A job's arguments: a serde struct with a stable type name.
///
/// The type name is written into every entry (`type` field) and chooses the
/// handler. Keep it stable across deploys; renaming the Rust struct is fine.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendWelcome { to: String }
///
/// impl ferry::Job for SendWelcome {
///     const TYPE: &'static str = "send_welcome";
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The job type name (1 to 128 printable characters).
    const TYPE: &'static str;
}
