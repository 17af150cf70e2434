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

/// A count a script returned: a non-negative integer, or a protocol error.
pub(crate) fn count(v: &Value) -> Result<u64> {
    int(v)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| protocol("expected a count", v))
}

fn protocol(what: &str, v: &Value) -> Error {
    Error::Protocol(format!("{what}: {v:?}"))
}

/// One parsed entry: id, fields (`None` for a deleted entry), the delivery
/// count and the suspect flag when the reply carries them.
pub(crate) type Entry = (String, Option<RawFields>, Option<u32>, bool);

/// Moves the bytes out of a string-like reply (no copy for bulk strings).
pub(crate) fn into_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        other => bytes(&other),
    }
}

fn into_array(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// Parses `{{id, {field, value, ...}[, deliveries[, suspect]]}, ...}`,
/// consuming the reply so field bytes are moved, not copied. An entry whose
/// fields are nil (a deleted entry, from Redis 6.2's XAUTOCLAIM) comes back
/// with `None` fields.
pub(crate) fn entries(v: Value) -> Result<Vec<Entry>> {
    let list = into_array(v).ok_or_else(|| Error::Protocol("expected a list of entries".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let parts = into_array(e).ok_or_else(|| Error::Protocol("expected an entry".into()))?;
        let count = |n: &Value| int(n).and_then(|n| u32::try_from(n).ok());
        let mut parts = parts.into_iter();
        let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
            return Err(Error::Protocol("expected [id, fields]".into()));
        };
        let deliveries = parts.next().as_ref().and_then(count);
        let suspect = parts.next().as_ref().and_then(int) == Some(1);
        let id = string(&id).ok_or_else(|| protocol("expected an entry id", &id))?;
        let fields = match fields {
            Value::Nil => None,
            other => {
                let flat = into_array(other)
                    .ok_or_else(|| Error::Protocol("expected entry fields".into()))?;
                let mut pairs = Vec::with_capacity(flat.len() / 2);
                let mut flat = flat.into_iter();
                while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                    let k = into_bytes(k)
                        .ok_or_else(|| Error::Protocol("expected a field name".into()))?;
                    let v = into_bytes(v)
                        .ok_or_else(|| Error::Protocol("expected a field value".into()))?;
                    pairs.push((k, v));
                }
                Some(pairs)
            }
        };
        out.push((id, fields, deliveries, suspect));
    }
    Ok(out)
}
