//! A batch's status ([`Queue::batch`](crate::Queue::batch)): its state,
//! counts and callbacks, read from `P:{Q}:batches:<id>` and its sets.

#[cfg(doc)]
use crate::Queue;

/// Where a batch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BatchState {
    /// Some of its jobs have not finished.
    Open,
    /// Every job has finished, and some failed (a dead one replayed may
    /// still succeed).
    Complete,
    /// Every job has succeeded.
    Succeeded,
}

/// Where a batch's callback is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallbackState {
    /// Not due yet.
    Waiting,
    /// Enqueued (its job id shows how it went).
    Enqueued,
    /// Never to run: a job of the batch failed for good (on success only).
    Dropped,
}

/// A batch's callback: its job id and where it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Callback {
    /// The callback's job id.
    pub id: String,
    /// Where it is.
    pub state: CallbackState,
}

/// A batch's status ([`Queue::batch`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchStatus {
    /// The batch's id.
    pub id: String,
    /// Where it is.
    pub state: BatchState,
    /// What it is, as its producer said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its jobs, however many joined.
    pub total: u64,
    /// Those not finished.
    pub pending: u64,
    /// Those that succeeded.
    pub succeeded: u64,
    /// Those that failed (dead, or cancelled).
    pub failed: u64,
    /// Of the failed, those in the dead letters, which a replay may still
    /// bring to success.
    pub dead: u64,
    /// When it was created, ms since the epoch (the server's clock).
    pub created_at: u64,
    /// When its last job finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<u64>,
    /// When its last job succeeded with every job succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<u64>,
    /// The on-success callback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Callback>,
    /// The on-complete callback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_complete: Option<Callback>,
}

/// A batch's status from its hash's fields and its sets' sizes.
pub(super) fn status_of(
    id: &str,
    fields: &[(String, String)],
    pending: u64,
    dead: u64,
) -> Option<BatchStatus> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let number = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok());
    let count = |name: &str| {
        number(name)
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0)
    };
    let at = |name: &str| number(name).and_then(|n| u64::try_from(n).ok());
    get("total")?;
    let completed_at = at("completed_at");
    let succeeded_at = at("succeeded_at");
    let callback = |name: &str, fired: Option<u64>| {
        get(name).map(|cb| Callback {
            id: cb.to_owned(),
            state: if get(&format!("{name}_job")).is_some() {
                CallbackState::Waiting
            } else if fired.is_some() {
                CallbackState::Enqueued
            } else {
                CallbackState::Dropped
            },
        })
    };
    Some(BatchStatus {
        id: id.to_owned(),
        state: match (completed_at, succeeded_at) {
            (_, Some(_)) => BatchState::Succeeded,
            (Some(_), None) => BatchState::Complete,
            (None, None) => BatchState::Open,
        },
        description: get("description").map(str::to_owned),
        total: count("total"),
        pending,
        succeeded: count("succeeded"),
        failed: count("failed"),
        dead,
        created_at: count("created_at"),
        completed_at,
        succeeded_at,
        on_success: callback("on_success", succeeded_at),
        on_complete: callback("on_complete", completed_at),
    })
}
