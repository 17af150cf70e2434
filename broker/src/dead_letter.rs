//! The dead-letter stream, for operators: list, replay and purge entries.

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use redis::Value;

use crate::envelope::is_entry_id;
use crate::error::Result;
use crate::queue::Queue;
use crate::reply;
use crate::scripts;

/// One dead-letter entry: the job's original fields plus `error`,
/// `failed_at` and `priority`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter stream entry id (use it to replay).
    pub entry_id: String,
    /// The entry's fields; non-UTF-8 bytes are shown lossily.
    pub fields: BTreeMap<String, String>,
}

impl DeadLetter {
    /// A field's value, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

impl Queue {
    /// The oldest `count` dead-letter entries.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis) or [`Error::Protocol`](crate::Error::Protocol).
    pub async fn dead_letters<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        count: usize,
    ) -> Result<Vec<DeadLetter>> {
        let v: Value = redis::cmd("XRANGE")
            .arg(self.keys().dead())
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(conn)
            .await?;
        letters(v)
    }

    /// Moves one dead-letter entry back to its priority stream as attempt 1,
    /// keeping its job id. Returns the new stream entry id, or `None` when no
    /// such dead-letter entry exists (or `entry_id` is not a stream entry id,
    /// `<ms>-<seq>`).
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn replay_dead<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        entry_id: &str,
    ) -> Result<Option<String>> {
        if !is_entry_id(entry_id) {
            return Ok(None);
        }
        let mut inv = self.invoke(&scripts::REPLAY);
        inv.arg(entry_id);
        Ok(inv.invoke_async(conn).await?)
    }

    /// Deletes the dead letters there when it starts (not those written
    /// meanwhile), and the index fields that point job ids at them, 1,000
    /// per script call (`purge_dead.lua`); returns how many it deleted.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn purge_dead<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<u64> {
        let there: u64 = redis::cmd("XLEN")
            .arg(self.keys().dead())
            .query_async(conn)
            .await?;
        let mut total = 0;
        while total < there {
            let mut inv = self.invoke(&scripts::PURGE_DEAD);
            inv.arg((there - total).min(1000));
            let n: u64 = inv.invoke_async(conn).await?;
            if n == 0 {
                break;
            }
            total += n;
        }
        Ok(total)
    }
}

/// An `XRANGE` reply as dead letters (fields as lossy UTF-8).
pub(crate) fn letters(v: Value) -> Result<Vec<DeadLetter>> {
    Ok(reply::entries(v)?
        .into_iter()
        .map(|(entry_id, fields, _, _)| DeadLetter {
            entry_id,
            fields: fields
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::is_entry_id;

    #[test]
    fn entry_ids_are_told_from_other_text() {
        for ok in [
            "0-1",
            "1700000000000-0",
            "18446744073709551615-18446744073709551615",
        ] {
            assert!(is_entry_id(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-b",
            "1-2-3",
            " 1-2",
            "18446744073709551616-0",
            "+",
            "-1-0",
        ] {
            assert!(!is_entry_id(bad), "{bad}");
        }
    }
}
