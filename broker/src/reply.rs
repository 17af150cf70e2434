//! Turning raw Redis replies into typed values without panicking.

use redis::Value;

use crate::error::{Error, Result};

/// Raw field/value pairs of a stream entry, bytes as stored.
pub type RawFields = Vec<(Vec<u8>, Vec<u8>)>;

pub(crate) fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.clone().into_bytes()),
        _ => None,
    }
}

pub(crate) fn string(v: &Value) -> Option<String> {
    bytes(v).and_then(|b| String::from_utf8(b).ok())
}

pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => string(other).and_then(|s| s.parse().ok()),
    }
}

pub(crate) fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        Value::Nil => Some(&[]),
        _ => None,
    }
}

fn protocol(what: &str, v: &Value) -> Error {
    Error::Protocol(format!("{what}: {v:?}"))
}

/// One parsed entry: id, fields (`None` for a deleted entry), the delivery
/// count and the suspect flag when the reply carries them.
pub(crate) type Entry = (String, Option<RawFields>, Option<u32>, bool);

/// Parses `{{id, {field, value, ...}[, deliveries]}, ...}`. An entry whose
/// fields are nil (a deleted entry, from Redis 6.2's XAUTOCLAIM) comes back
/// with `None` fields.
pub(crate) fn entries(v: &Value) -> Result<Vec<Entry>> {
    let list = array(v).ok_or_else(|| protocol("expected a list of entries", v))?;
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let parts = array(e).ok_or_else(|| protocol("expected an entry", e))?;
        let count = |n: &Value| int(n).and_then(|n| u32::try_from(n).ok());
        let (id, fields, deliveries, suspect) = match parts {
            [id, fields] => (id, fields, None, false),
            [id, fields, n] => (id, fields, count(n), false),
            [id, fields, n, s] => (id, fields, count(n), int(s) == Some(1)),
            _ => return Err(protocol("expected [id, fields]", e)),
        };
        let id = string(id).ok_or_else(|| protocol("expected an entry id", e))?;
        let fields = match fields {
            Value::Nil => None,
            other => {
                let flat = array(other).ok_or_else(|| protocol("expected entry fields", other))?;
                let mut pairs = Vec::with_capacity(flat.len() / 2);
                for kv in flat.chunks(2) {
                    if let [k, v] = kv {
                        let k = bytes(k).ok_or_else(|| protocol("expected a field name", k))?;
                        let v = bytes(v).ok_or_else(|| protocol("expected a field value", v))?;
                        pairs.push((k, v));
                    }
                }
                Some(pairs)
            }
        };
        out.push((id, fields, deliveries, suspect));
    }
    Ok(out)
}
