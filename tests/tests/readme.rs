//! The README's "SDK in one screen" is a whole program; a new user copies
//! it into a new crate. It must build there, exactly as shown, with only the
//! dependencies the README lists; so must the lifecycle snippet after it.

use std::path::Path;
use std::process::Command;

/// The body of the first fenced block of `lang` in `text`.
fn fenced<'a>(text: &'a str, lang: &str) -> &'a str {
    let open = format!("```{lang}\n");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("no ```{lang} block"))
        + open.len();
    let len = text[start..].find("```").expect("an unclosed block");
    &text[start..start + len]
}

#[test]
fn the_readme_program_builds_in_a_fresh_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## The SDK in one screen")
        .nth(1)
        .expect("the README has its SDK section")
        .split("\n## ")
        .next()
        .unwrap();
    let dependencies = fenced(section, "toml");
    // The program, and the lifecycle snippet after it, in a function of
    // the program (it uses the program's job type and imports).
    let program = fenced(section, "rust");
    let rest = &section[section.find(program).unwrap() + program.len()..];
    let lifecycle = fenced(
        rest.split("### Every job answerable by id")
            .nth(1)
            .expect("the lifecycle snippet"),
        "rust",
    );
    let program = format!(
        "{program}\n#[allow(dead_code)]\nasync fn lifecycle(client: &Client) -> ferry_queue::Result<()> {{\n{lifecycle}\nOk(())\n}}\n"
    );

    // The one change: ferry-queue from this checkout instead of crates.io.
    let sdk = root.join("sdk").canonicalize().unwrap();
    let local = dependencies
        .lines()
        .map(|line| match line.split_once('=') {
            Some((name, _)) if name.trim() == "ferry-queue" => {
                format!("ferry-queue = {{ path = {:?} }}", sdk.display().to_string())
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(
        local,
        dependencies.trim_end(),
        "the README lists ferry-queue"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"readme-program\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n{local}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("src/main.rs"), &program).unwrap();
    // The workspace's lock file, so the versions are the ones already
    // downloaded and tested (cargo drops what the program does not use).
    std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--offline"])
        .current_dir(dir.path())
        // Its own target directory, kept between runs, so later runs are quick.
        .env(
            "CARGO_TARGET_DIR",
            root.join("target").join("readme-program"),
        )
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "the README program does not build in a fresh crate:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
