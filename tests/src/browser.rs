//! A real browser for the dashboard's tests: headless Chromium driven over
//! WebDriver (`fantoccini`) through a `chromedriver` this process starts on
//! a free loopback port, and stops (with the browser) when dropped.
//!
//! Where Chromium or chromedriver are missing, [`Browser::start`] returns
//! `None` after saying how to install them, or panics with that message
//! when `FERRY_BROWSER_TESTS=required` (as CI sets it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How to get the browser, for the messages.
pub const INSTALL_HINT: &str = "the dashboard's browser test needs Chromium and chromedriver: \
    `apt-get install chromium chromium-driver` (Debian), or point FERRY_CHROMIUM and \
    FERRY_CHROMEDRIVER at them";

/// The window the pages are checked and photographed at.
pub const WINDOW: (u32, u32) = (1280, 800);

/// The first of `candidates` (an environment variable's value first) that
/// is a file, else the first found on `PATH`.
fn find(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() {
            if p.is_file() {
                return Some(p.to_path_buf());
            }
        } else if let Some(path) = std::env::var_os("PATH") {
            if let Some(found) = std::env::split_paths(&path)
                .map(|d| d.join(c))
                .find(|f| f.is_file())
            {
                return Some(found);
            }
        }
    }
    None
}

/// True when the browser tests must run (`FERRY_BROWSER_TESTS=required`).
pub fn required() -> bool {
    std::env::var("FERRY_BROWSER_TESTS").is_ok_and(|v| v == "required")
}

/// A port nobody listens on right now (the OS's pick).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `chromedriver` as a child in a process group of its own, so that the
/// browser it starts goes with it.
struct Driver {
    child: Child,
}

impl Driver {
    fn spawn(bin: &Path, port: u16) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let child = Command::new(bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Self { child })
    }

    /// Kills the group this driver leads: the driver and the browser
    /// processes it started (they are this test's own).
    fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium under WebDriver.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Driver,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at 1280×800, or returns
    /// `None` (having said why on stderr) where they are not installed and
    /// not [`required`].
    pub async fn start() -> Option<Self> {
        let driver_bin = find(
            "FERRY_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "chromedriver"],
        );
        let chromium = find(
            "FERRY_CHROMIUM",
            &[
                "/usr/bin/chromium",
                "chromium",
                "chromium-browser",
                "google-chrome",
            ],
        );
        let (Some(driver_bin), Some(chromium)) = (driver_bin, chromium) else {
            assert!(
                !required(),
                "FERRY_BROWSER_TESTS=required, but {INSTALL_HINT}"
            );
            eprintln!(
                "skipped: {INSTALL_HINT} (FERRY_BROWSER_TESTS=required makes this a failure)"
            );
            return None;
        };
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let mut last_error = String::new();
        // A port picked free can be taken before chromedriver binds it: try
        // a few.
        for _ in 0..3 {
            let port = free_port();
            let mut driver = Driver::spawn(&driver_bin, port)
                .unwrap_or_else(|e| panic!("start {}: {e}", driver_bin.display()));
            let url = format!("http://127.0.0.1:{port}");
            if let Err(e) = wait_ready(&mut driver, &url).await {
                last_error = e;
                driver.kill();
                continue;
            }
            let (w, h) = WINDOW;
            let mut caps = serde_json::Map::new();
            caps.insert(
                "goog:chromeOptions".into(),
                json!({
                    "binary": chromium,
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--disable-extensions",
                        "--no-first-run",
                        "--hide-scrollbars",
                        "--force-device-scale-factor=1",
                        format!("--window-size={w},{h}"),
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                }),
            );
            let connected =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url)
                    .await;
            match connected {
                Ok(client) => {
                    let shots = screenshot_dir();
                    std::fs::create_dir_all(&shots).expect("the screenshot folder");
                    return Some(Self {
                        client,
                        driver,
                        _profile: profile,
                        shots,
                    });
                }
                Err(e) => {
                    last_error = format!("new WebDriver session: {e}");
                    driver.kill();
                }
            }
        }
        panic!(
            "could not start a headless Chromium through {}: {last_error}",
            driver_bin.display()
        );
    }

    /// Where screenshots go.
    pub fn screenshot_dir(&self) -> &Path {
        &self.shots
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("run in the page: {e}\n{script}"))
    }

    /// The text of the first element matching `css`, or `None`.
    pub async fn text(&self, css: &str) -> Option<String> {
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
                vec![json!(css)],
            )
            .await;
        v.as_str().map(str::to_owned)
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let v = self
            .js(
                "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.trim());",
                vec![json!(css)],
            )
            .await;
        serde_json::from_value(v).unwrap_or_default()
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.js(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        )
        .await
        .as_u64()
        .unwrap_or(0) as usize
    }

    /// True when an element matches `css` and is displayed (not `hidden`,
    /// not `display: none` up its ancestors).
    pub async fn visible(&self, css: &str) -> bool {
        self.js(
            "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;",
            vec![json!(css)],
        )
        .await
        .as_bool()
        .unwrap_or(false)
    }

    /// Scrolls the first element matching `css` to the middle of the
    /// window (for a screenshot).
    pub async fn scroll_to(&self, css: &str) {
        self.js(
            "const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'center'});",
            vec![json!(css)],
        )
        .await;
    }

    /// Panics unless the page ran clean: nothing blocked by its content
    /// security policy and no uncaught script error (the dashboard counts
    /// both on `<html>`).
    pub async fn assert_clean(&self) {
        let v = self
            .js(
                "const d = document.documentElement.dataset; return [d.cspViolations ?? null, d.scriptErrors ?? null];",
                vec![],
            )
            .await;
        if v != json!([null, null]) {
            self.fail(&format!(
                "the page was not clean: [CSP violations, script errors] = {v}"
            ))
            .await;
        }
    }

    /// Waits until an element matching `css` is displayed.
    pub async fn wait_visible(&self, css: &str, within: Duration) {
        let what = format!("{css} to be shown");
        self.wait_for(within, &what, || self.visible(css)).await;
    }

    /// Waits until `check` holds of the page, polling every 50 ms; panics
    /// after `within` with `what`, the page's text, and a screenshot.
    pub async fn wait_for<F, Fut>(&self, within: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + within;
        loop {
            if check().await {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {within:?} waiting for: {what}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the text of `css` satisfies `pred`; returns it.
    pub async fn wait_text(
        &self,
        css: &str,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let mut seen = None;
        let deadline = Instant::now() + within;
        loop {
            let t = self.text(css).await;
            if let Some(t) = &t {
                if pred(t) {
                    return t.clone();
                }
            }
            seen = t.or(seen);
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {within:?} waiting for the text of {css} (last seen: {seen:?})"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `css` matches an element, and returns it.
    pub async fn wait_element(&self, css: &str, within: Duration) -> Element {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                return e;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("no element {css} within {within:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element `css` as a user would (WebDriver's click: the
    /// element must be there, visible and not covered), waiting up to 10 s
    /// for it; a click on an element replaced meanwhile is tried again.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let e = self.wait_element(css, Duration::from_secs(10)).await;
            // In the middle of the window: not under the page's sticky bar.
            self.scroll_to(css).await;
            match e.click().await {
                Ok(()) => return,
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => self.fail(&format!("click {css}: {err}")).await,
            }
        }
    }

    /// Types `text` into the input `css` (cleared first).
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_element(css, Duration::from_secs(10)).await;
        e.clear()
            .await
            .unwrap_or_else(|err| panic!("clear {css}: {err}"));
        e.send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    /// Saves a PNG of the window as `<name>.png` in the screenshot folder;
    /// returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Panics with `message`, the page's URL and text, after saving a
    /// screenshot of it.
    pub async fn fail(&self, message: &str) -> ! {
        let shot = match self.client.screenshot().await {
            Ok(png) => {
                let path = self.shots.join("failure.png");
                std::fs::write(&path, png)
                    .map(|()| path.display().to_string())
                    .unwrap_or_else(|e| format!("(not saved: {e})"))
            }
            Err(e) => format!("(none: {e})"),
        };
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        panic!("{message}\nat {url}; screenshot {shot}\npage text:\n{text}");
    }

    /// Ends the WebDriver session (closing the browser), then the driver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        self.driver.kill();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.driver.kill();
    }
}

/// Polls chromedriver's `/status` until it says it is ready (or it exits,
/// or 20 s pass).
async fn wait_ready(driver: &mut Driver, url: &str) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = driver.child.try_wait() {
            return Err(format!("chromedriver exited at start: {status}"));
        }
        if let Ok(r) = http.get(format!("{url}/status")).send().await {
            if let Ok(v) = r.json::<Value>().await {
                if v["value"]["ready"] == true {
                    return Ok(());
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("chromedriver at {url} not ready within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `<target>/dashboard-screenshots`: `CARGO_TARGET_DIR` when set (as an
/// absolute path), else the `target` folder the test binary runs from
/// (`target/<profile>/deps/`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            // target/<profile>/deps/<exe> -> target
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("dashboard-screenshots")
}
