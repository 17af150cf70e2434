//! A wrong host clock for a real process: libfaketime (Debian's `faketime`
//! package) preloaded into it. Only the wall clock moves; the monotonic
//! clock (timers, timeouts) stays true, as on a host whose NTP is off.

use std::path::{Path, PathBuf};

/// Where Debian and Ubuntu put the library (`FERRY_LIBFAKETIME` overrides).
const CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
    "/usr/local/lib/faketime/libfaketimeMT.so.1",
];

/// The libfaketime library; panics with how to install it.
pub fn libfaketime() -> PathBuf {
    if let Ok(p) = std::env::var("FERRY_LIBFAKETIME") {
        return PathBuf::from(p);
    }
    CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            panic!(
                "the clock tests need libfaketime: `apt-get install faketime` \
                 (.ci/run does), or set FERRY_LIBFAKETIME to libfaketimeMT.so.1"
            )
        })
}

/// Environment for a process whose wall clock is `offset` away from the
/// truth, in libfaketime's syntax ("+1h", "-1h").
pub fn skewed(offset: &str) -> Vec<(String, String)> {
    vec![
        (
            "LD_PRELOAD".into(),
            libfaketime().to_string_lossy().into_owned(),
        ),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
    ]
}
