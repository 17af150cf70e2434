//! Property tests of the envelope: encoding round-trips, and decoding any
//! field map, however hostile, returns a value or a reason without panicking.

use ferry_broker::{Envelope, Priority};
use proptest::prelude::*;

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<u128>(),
        "[a-z][a-z0-9_.:-]{0,40}",
        ".{0,200}",
        1u32..=50,
        0u32..=49,
        any::<u64>(),
        proptest::option::of(".{0,100}"),
    )
        .prop_map(
            |(id, job_type, payload, attempt, max_retries, enqueued_at, last_error)| Envelope {
                id: uuid::Uuid::from_u128(id).to_string(),
                job_type,
                payload: serde_json::Value::String(payload).to_string(),
                attempt: attempt.min(max_retries + 1),
                max_retries,
                enqueued_at,
                last_error,
                retention_ms: None,
                concurrency_key: None,
                batch: None,
                flow: None,
            },
        )
}

fn raw(env: &Envelope) -> Vec<(Vec<u8>, Vec<u8>)> {
    env.to_fields()
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.into_bytes()))
        .collect()
}

/// Field names that are often right, values that are often almost right.
fn hostile_fields() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    let name = prop_oneof![
        Just(b"id".to_vec()),
        Just(b"type".to_vec()),
        Just(b"payload".to_vec()),
        Just(b"attempt".to_vec()),
        Just(b"max_retries".to_vec()),
        Just(b"enqueued_at".to_vec()),
        Just(b"last_error".to_vec()),
        Just(b"raw".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ];
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        Just(b"18446744073709551616".to_vec()),
        Just(uuid::Uuid::now_v7().to_string().into_bytes()),
        ".{0,30}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec((name, value), 0..12)
}

proptest! {
    #[test]
    fn envelopes_round_trip_through_stream_fields(env in envelope()) {
        let back = Envelope::from_fields(&raw(&env), 1 << 20).unwrap();
        prop_assert_eq!(back, env);
    }

    #[test]
    fn envelopes_round_trip_through_the_delayed_set_member(env in envelope()) {
        let member: serde_json::Value = serde_json::from_str(&env.to_delayed_member(Priority::Low)).unwrap();
        let obj = member.as_object().unwrap();
        let fields: Vec<(Vec<u8>, Vec<u8>)> = obj
            .iter()
            .filter(|(k, _)| k.as_str() != "priority")
            .map(|(k, v)| (k.clone().into_bytes(), v.as_str().unwrap().as_bytes().to_vec()))
            .collect();
        prop_assert_eq!(Envelope::from_fields(&fields, 1 << 20).unwrap(), env);
        prop_assert_eq!(obj["priority"].as_str(), Some("low"));
    }

    #[test]
    fn decoding_any_field_map_never_panics(fields in hostile_fields(), limit in 0usize..100) {
        match Envelope::from_fields(&fields, limit) {
            Ok(env) => {
                prop_assert!(env.attempt >= 1 && env.attempt <= env.max_retries + 1);
                prop_assert!(env.payload.len() <= limit);
            }
            Err(reason) => prop_assert!(!reason.0.is_empty()),
        }
    }
}
