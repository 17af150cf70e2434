//! Which dead letters a query takes: [`DeadFilter`] (job type, error
//! text), matched without regard to case ([`fold_case`]).

use crate::dead_letter::DeadLetter;

/// Which dead letters to take. Empty (the default) takes every one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadFilter {
    /// Only dead letters of this job type (exact match).
    pub job_type: Option<String>,
    /// Only dead letters whose error contains this text, ignoring case
    /// (Unicode: both sides go through [`fold_case`]).
    pub error: Option<String>,
}

impl DeadFilter {
    /// True when `letter` passes every condition given.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        self.matcher().matches(letter)
    }

    /// True when the filter takes every dead letter.
    pub fn is_empty(&self) -> bool {
        self.job_type.is_none() && self.error.is_none()
    }

    /// The filter with its error text folded once, for matching many letters.
    pub fn matcher(&self) -> DeadMatcher<'_> {
        DeadMatcher {
            job_type: self.job_type.as_deref(),
            error: self.error.as_deref().map(fold_case),
        }
    }
}

/// A [`DeadFilter`] ready to match many letters, its error text folded
/// once (see [`DeadFilter::matcher`]).
#[derive(Clone, Debug)]
pub struct DeadMatcher<'a> {
    job_type: Option<&'a str>,
    error: Option<String>,
}

impl DeadMatcher<'_> {
    /// True when `letter` passes every condition (as [`DeadFilter::matches`]).
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let type_ok = self.job_type.is_none_or(|t| letter.get("type") == Some(t));
        type_ok
            && self.error.as_deref().is_none_or(|needle| {
                letter
                    .get("error")
                    .is_some_and(|e| fold_case(e).contains(needle))
            })
    }
}

/// `text` for matching without regard to case: every character replaced
/// by its Unicode lowercase ([`char::to_lowercase`], one character at a
/// time, so no context rules), with the final sigma `ς` read as `σ`. Not
/// full case folding: `ß` stays `ß` (it does not match `ss`).
pub fn fold_case(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(job_type: &str, error: &str) -> DeadLetter {
        DeadLetter {
            entry_id: "1-0".into(),
            fields: [("type", job_type), ("error", error)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    #[test]
    fn filters_match_type_exactly_and_error_text_ignoring_case() {
        let l = letter("email", "SMTP timeout after 30s");
        assert!(DeadFilter::default().matches(&l));
        let by_type = |t: &str| DeadFilter {
            job_type: Some(t.into()),
            error: None,
        };
        let by_error = |e: &str| DeadFilter {
            job_type: None,
            error: Some(e.into()),
        };
        assert!(by_type("email").matches(&l));
        assert!(!by_type("emai").matches(&l));
        assert!(by_error("smtp TIMEOUT").matches(&l));
        assert!(!by_error("refused").matches(&l));
        let both = DeadFilter {
            job_type: Some("email".into()),
            error: Some("refused".into()),
        };
        assert!(!both.matches(&l));
    }

    #[test]
    fn error_text_is_matched_ignoring_case_beyond_ascii() {
        let by_error = |e: &str| DeadFilter {
            job_type: None,
            error: Some(e.into()),
        };
        for (error, needle) in [
            ("Délai DÉPASSÉ après 30 s", "délai dépassé"),
            ("ОШИБКА сети", "ошибка СЕТИ"),
            ("ΑΠΟΤΥΧΙΑ ΣΥΝΔΕΣΗΣ", "συνδεσης"),
            ("Straße gesperrt", "STRAßE"),
        ] {
            let l = letter("email", error);
            assert!(by_error(needle).matches(&l), "{error} / {needle}");
            assert!(by_error(needle).matcher().matches(&l), "{error} / {needle}");
        }
        // Lowercase, not full case folding.
        assert!(!by_error("strasse").matches(&letter("t", "Straße")));
        assert_eq!(fold_case("ΟΔΟΣ"), "οδοσ");
        assert_eq!(fold_case("οδος"), "οδοσ");
    }
}
