//! Debian and Ubuntu: the distribution's own `redis-server`, fetched with
//! `apt-get download` and unpacked with `dpkg-deb -x`, never installed.
//!
//! Debian's `redis-server` is a symlink to `redis-check-rdb` (one binary
//! that picks its role by its name); the entry holds the binary itself
//! under the name `redis-server`. The libraries it links that the machine
//! lacks (on a fresh machine typically liblzf1 and libjemalloc2) are
//! fetched too and kept in the entry's `lib/`; then `redis-server` is a
//! two-line `sh` wrapper that sets `LD_LIBRARY_PATH` and `exec`s the binary
//! (the same process, so its pid is the server's).

use std::fs;
use std::path::{Path, PathBuf};

use crate::{make_executable, Built, Resolver, Version, MIN_VERSION};

/// The cache entry of a server from Debian's packages.
pub(crate) const ENTRY: &str = "debian";

/// Builds the entry in `work` from the distribution's packages.
pub(crate) fn obtain(r: &Resolver, work: &Path) -> Result<Built, String> {
    let need = |name: &str| {
        r.tool(name)
            .ok_or_else(|| format!("Debian's packages: no {name} (not Debian or Ubuntu)"))
    };
    let (apt_get, apt_cache, dpkg_deb, dpkg_query) = (
        need("apt-get")?,
        need("apt-cache")?,
        need("dpkg-deb")?,
        need("dpkg-query")?,
    );
    let root = is_root(r);
    let update = || {
        r.run(&apt_get, &["update", "-qq"], None)
            .map_err(|e| format!("Debian's packages: {e}"))
    };
    let show = || {
        r.run(
            &apt_cache,
            &["show", "--no-all-versions", "redis-tools"],
            None,
        )
    };
    let mut updated = false;
    let shown = match show() {
        Ok(out) if field(&String::from_utf8_lossy(&out.stdout), "Version").is_some() => out,
        _ if root => {
            update()?;
            updated = true;
            show().map_err(|e| format!("Debian's packages: {e}"))?
        }
        _ => {
            return Err(
                "Debian's packages: apt knows no redis-tools package (the package \
                        lists are missing; `apt-get update` as root fetches them)"
                    .to_owned(),
            )
        }
    };
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    let package_version = field(&shown, "Version").unwrap_or_default();
    let upstream = package_version
        .split_once(':')
        .map_or(package_version, |(_, rest)| rest);
    let version = Version::parse(upstream)
        .ok_or_else(|| format!("Debian's packages: cannot read the version {package_version:?}"))?;
    if version < MIN_VERSION {
        return Err(format!(
            "Debian's packages: this release's Redis is {version}, older than 6.2"
        ));
    }

    // The libraries redis-tools needs that are not installed here.
    let installed = |package: &str| {
        r.run(
            &dpkg_query,
            &["-W", "-f=${db:Status-Abbrev}", package],
            None,
        )
        .map(|out| out.stdout.starts_with(b"ii"))
        .unwrap_or(false)
    };
    let mut libs = Vec::new();
    for dependency in field(&shown, "Depends").unwrap_or_default().split(',') {
        let alternatives: Vec<&str> = dependency
            .split('|')
            .filter_map(|a| a.split_whitespace().next())
            .map(|a| a.trim_end_matches(":any"))
            .collect();
        if alternatives.iter().any(|a| installed(a)) {
            continue;
        }
        if let Some(lib) = alternatives
            .iter()
            .find(|a| a.starts_with("lib") && !a.starts_with("libc6"))
        {
            libs.push(lib.to_string());
        }
    }

    let debs = work.join("debs");
    fs::create_dir_all(&debs).map_err(|e| format!("Debian's packages: {e}"))?;
    let mut args = vec!["download", "-q", "redis-server", "redis-tools"];
    args.extend(libs.iter().map(String::as_str));
    if let Err(e) = r.run(&apt_get, &args, Some(&debs)) {
        // A stale list names a version the mirror no longer has.
        if !root || updated {
            return Err(format!("Debian's packages: {e}"));
        }
        update()?;
        r.run(&apt_get, &args, Some(&debs))
            .map_err(|e| format!("Debian's packages: {e}"))?;
    }
    let unpacked = work.join("unpacked");
    let mut count = 0;
    for deb in fs::read_dir(&debs).map_err(|e| format!("Debian's packages: {e}"))? {
        let deb = deb.map_err(|e| format!("Debian's packages: {e}"))?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            let (deb, to) = (deb.to_string_lossy(), unpacked.to_string_lossy());
            r.run(&dpkg_deb, &["-x", &deb, &to], None)
                .map_err(|e| format!("Debian's packages: {e}"))?;
            count += 1;
        }
    }
    if count < 2 {
        return Err("Debian's packages: apt-get download fetched nothing".to_owned());
    }

    assemble(&unpacked, &work.join("entry"), &libs).map(|dir| Built {
        dir,
        what: format!(
            "fetched Redis {version} with `apt-get download {}` and unpacked it (nothing installed)",
            args[2..].join(" ")
        ),
    })
}

/// The entry from the unpacked packages: the server (and redis-cli), and
/// the fetched libraries with wrappers when there are any.
fn assemble(unpacked: &Path, entry: &Path, libs: &[String]) -> Result<PathBuf, String> {
    let err = |e: std::io::Error| format!("Debian's packages: {e}");
    let server = resolve_link(unpacked, Path::new("usr/bin/redis-server"))?;
    let cli = resolve_link(unpacked, Path::new("usr/bin/redis-cli")).ok();
    let mut programs = vec![("redis-server", server)];
    programs.extend(cli.map(|c| ("redis-cli", c)));

    let lib_dir = entry.join("lib");
    let mut copied = 0;
    if !libs.is_empty() {
        fs::create_dir_all(&lib_dir).map_err(err)?;
        for base in ["usr/lib", "lib"] {
            let base = unpacked.join(base);
            let Ok(subdirs) = fs::read_dir(&base) else {
                continue;
            };
            // usr/lib itself and its multiarch directories (x86_64-linux-gnu).
            let dirs = std::iter::once(base.clone())
                .chain(subdirs.flatten().map(|d| d.path()).filter(|p| p.is_dir()));
            for dir in dirs {
                for file in fs::read_dir(&dir).map_err(err)?.flatten() {
                    let name = file.file_name();
                    if name.to_string_lossy().contains(".so") && file.path().is_file() {
                        // fs::copy follows the package's relative symlinks.
                        fs::copy(file.path(), lib_dir.join(&name)).map_err(err)?;
                        copied += 1;
                    }
                }
            }
        }
    }
    if copied == 0 {
        fs::create_dir_all(entry).map_err(err)?;
        for (name, from) in &programs {
            let to = entry.join(name);
            fs::copy(from, &to).map_err(err)?;
            make_executable(&to)?;
        }
    } else {
        let bin = entry.join("bin");
        fs::create_dir_all(&bin).map_err(err)?;
        for (name, from) in &programs {
            let real = bin.join(name);
            fs::copy(from, &real).map_err(err)?;
            make_executable(&real)?;
            let wrapper = entry.join(name);
            fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\n\
                     # Debian's {name} with the libraries this machine lacks (ferry-dev-redis).\n\
                     here=$(dirname \"$0\")\n\
                     LD_LIBRARY_PATH=\"$here/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\"\n\
                     export LD_LIBRARY_PATH\n\
                     exec \"$here/bin/{name}\" \"$@\"\n"
                ),
            )
            .map_err(err)?;
            make_executable(&wrapper)?;
        }
    }
    Ok(entry.to_owned())
}

/// `relative` inside `root`, following symlinks inside `root` (an absolute
/// link target is taken as inside `root` too).
fn resolve_link(root: &Path, relative: &Path) -> Result<PathBuf, String> {
    let mut path = root.join(relative);
    for _ in 0..10 {
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| format!("Debian's packages: no {}: {e}", relative.display()))?;
        if !meta.file_type().is_symlink() {
            return Ok(path);
        }
        let target = fs::read_link(&path).map_err(|e| format!("Debian's packages: {e}"))?;
        path = if target.is_absolute() {
            root.join(target.strip_prefix("/").unwrap_or(&target))
        } else {
            path.parent().unwrap_or(root).join(target)
        };
    }
    Err(format!(
        "Debian's packages: {} is a symlink loop",
        relative.display()
    ))
}

/// The value of a `Field: value` line of `apt-cache show`.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
        .map(str::trim)
}

/// Whether this process runs as root (`id -u`).
fn is_root(r: &Resolver) -> bool {
    r.tool("id")
        .and_then(|id| r.run(&id, &["-u"], None).ok())
        .is_some_and(|out| out.stdout.trim_ascii() == b"0")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn apt_fields_and_package_symlinks() {
        let show = "Package: redis-tools\nVersion: 5:7.0.15-1~deb12u10\n\
                    Depends: adduser, libatomic1 (>= 4.8), libsystemd0 | libelogind0\n";
        assert_eq!(field(show, "Version"), Some("5:7.0.15-1~deb12u10"));
        assert!(field(show, "Depends").is_some_and(|d| d.starts_with("adduser,")));
        assert_eq!(field(show, "Pre-Depends"), None);

        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("usr/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("redis-check-rdb"), "binary").unwrap();
        std::os::unix::fs::symlink("redis-check-rdb", bin.join("redis-server")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/redis-check-rdb", bin.join("abs")).unwrap();
        let want = bin.join("redis-check-rdb");
        assert_eq!(
            resolve_link(root.path(), Path::new("usr/bin/redis-server")),
            Ok(want.clone())
        );
        assert_eq!(
            resolve_link(root.path(), Path::new("usr/bin/abs")),
            Ok(want)
        );
        assert!(resolve_link(root.path(), Path::new("usr/bin/redis-cli")).is_err());
    }
}
