//! Job ids and stream entry ids: the id of a fresh job, derived from its
//! entry ([`derived_id`]), the form of a valid job id and of one a producer
//! may give, and the time an entry id holds.

use super::preview;
use crate::priority::Priority;

/// Longest accepted job id.
pub const MAX_JOB_ID_LEN: usize = 128;

/// The id of a fresh job: the priority and stream entry id it was first
/// queued as, `<priority>-<entry id>` (`normal-1732370000000-0`).
pub fn derived_id(priority: Priority, entry_id: &str) -> String {
    format!("{}-{entry_id}", priority.as_str())
}

/// The priority and entry id a [`derived_id`] names, or `None` for any
/// other id.
pub fn parse_derived_id(id: &str) -> Option<(Priority, &str)> {
    let (name, entry) = id.split_once('-')?;
    let priority = Priority::ALL.into_iter().find(|p| p.as_str() == name)?;
    let (ms, seq) = entry.split_once('-')?;
    let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
    (digits(ms) && digits(seq)).then_some((priority, entry))
}

/// True for a well-formed job id: 1 to [`MAX_JOB_ID_LEN`] bytes of
/// `A-Z a-z 0-9 . _ : -` (UUIDs, derived ids and most producers' own ids).
pub fn is_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_JOB_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Checks an id a producer gives its job: a well-formed job id that does
/// not look like a derived one (those name stream entries).
///
/// # Errors
/// The reason, as text.
pub fn check_given_job_id(id: &str) -> Result<(), String> {
    if !is_job_id(id) {
        return Err(format!(
            "job id {} is not 1 to {MAX_JOB_ID_LEN} of A-Z a-z 0-9 . _ : -",
            preview(id.as_bytes())
        ));
    }
    if parse_derived_id(id).is_some() {
        return Err(format!(
            "job id {id} has the form <priority>-<ms>-<seq> that Ferry gives fresh jobs; choose another"
        ));
    }
    Ok(())
}

/// The milliseconds of a stream entry id (`ms-seq`), 0 when it has none.
pub fn entry_ms(entry_id: &str) -> u64 {
    entry_id
        .split_once('-')
        .and_then(|(ms, _)| ms.parse().ok())
        .unwrap_or(0)
}

/// True for a whole stream entry id, `<ms>-<seq>` (digits, each part a u64).
pub(crate) fn is_entry_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(ms, seq)| {
        [ms, seq].iter().all(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u64>().is_ok()
        })
    })
}
