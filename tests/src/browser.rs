//! A real headless Chromium (Debian's `chromium`), driven over WebDriver by Debian's
//! `chromedriver` on a port of the test's own, for the console's tests.
//!
//! The driver runs in a process group of its own, with the browser it starts; the
//! group is killed when the [`Browser`] is dropped, so a failing test leaves no
//! browser behind. The browser's profile is a fresh directory, removed at drop.

use anyhow::{bail, Context as _};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

use crate::free_port;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// What a wait allows before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// One entry of the browser's console log, as chromedriver reports it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width`×`height`, whose
    /// clock runs in `time_zone` (an IANA name, as `TZ`).
    pub async fn start(width: u32, height: u32, time_zone: &str) -> anyhow::Result<Self> {
        for program in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(program).is_file() {
                bail!(
                    "{program} is missing: `make test` installs Debian's chromium and chromium-driver (scripts/prereqs.sh --browser)"
                );
            }
        }
        let port = free_port()?;
        let profile = std::env::temp_dir().join(crate::unique_prefix("chromium-profile"));
        std::fs::create_dir_all(&profile)?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--log-level=WARNING")
            .env("TZ", time_zone)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("start chromedriver")?;
        let client = connect_when_ready(port, &profile, width, height).await?;
        client.set_window_size(width, height).await?;
        Ok(Self {
            client,
            driver,
            profile,
        })
    }

    /// The element `css` matches, once it exists.
    pub async fn find(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element matches `{css}` within {WAIT:?}"))
    }

    /// Waits until the text of the element `css` matches contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> anyhow::Result<String> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < WAIT {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = el.text().await {
                    if text.contains(needle) {
                        return Ok(text);
                    }
                    last = text;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("`{css}` did not show {needle:?} within {WAIT:?}; it showed {last:?}")
    }

    /// Clears the field `css` and types `text` into it, as a person would.
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self.find(css).await?;
        el.clear().await?;
        el.send_keys(text).await?;
        Ok(())
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.find(css).await?.click().await?;
        Ok(())
    }

    /// Clicks the button or link whose visible text is exactly `text`.
    pub async fn click_text(&self, text: &str) -> anyhow::Result<()> {
        let xpath = format!(
            "//*[(self::button or self::a) and normalize-space(.)='{}']",
            text.replace('\'', "")
        );
        let el = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(&xpath))
            .await
            .with_context(|| format!("no button or link {text:?} within {WAIT:?}"))?;
        el.click().await?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        Ok(self.client.execute(script, args).await?)
    }

    /// A PNG of the whole page (the window stretched to its height, at most 3,000
    /// pixels, then restored), written to `dir/name.png`.
    pub async fn screenshot(&self, dir: &std::path::Path, name: &str) -> anyhow::Result<PathBuf> {
        let (width, height) = self.client.get_window_size().await?;
        let page = self
            .eval("return document.documentElement.scrollHeight;", vec![])
            .await?
            .as_u64()
            .unwrap_or(height);
        let tall = page.clamp(height, 3_000) + (height - self.inner_height().await?.min(height));
        self.client
            .set_window_size(u32::try_from(width)?, u32::try_from(tall)?)
            .await?;
        let png = self.client.screenshot().await;
        self.client
            .set_window_size(u32::try_from(width)?, u32::try_from(height)?)
            .await?;
        let png = png?;
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// The height of the page's viewport (the window less its frame).
    async fn inner_height(&self) -> anyhow::Result<u64> {
        Ok(self
            .eval("return window.innerHeight;", vec![])
            .await?
            .as_u64()
            .unwrap_or_default())
    }

    /// The console entries logged since the last call (chromedriver hands each out once).
    pub async fn console_log(&self) -> anyhow::Result<Vec<LogEntry>> {
        let value = self.client.issue_cmd(BrowserLog).await?;
        let entries = value.as_array().cloned().unwrap_or_default();
        Ok(entries
            .into_iter()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_owned(),
                source: e["source"].as_str().unwrap_or_default().to_owned(),
                message: e["message"].as_str().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    /// Ends the session (the browser quits), then the driver.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let client = self.client.clone();
        client.close().await?;
        let _ = self.driver.kill().await;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Waits for chromedriver to answer on `port`, then opens a session.
async fn connect_when_ready(
    port: u16,
    profile: &std::path::Path,
    width: u32,
    height: u32,
) -> anyhow::Result<Client> {
    let status = format!("http://127.0.0.1:{port}/status");
    let http = crate::http_client();
    let start = Instant::now();
    loop {
        let ready = match http.get(&status).send().await {
            Ok(r) => r
                .json::<Value>()
                .await
                .map(|v| v["value"]["ready"] == json!(true))
                .unwrap_or(false),
            Err(_) => false,
        };
        if ready {
            break;
        }
        if start.elapsed() > WAIT {
            bail!("chromedriver did not answer on port {port} within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--no-first-run",
                "--metrics-recording-only",
                "--password-store=basic",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.display()),
            ],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        bail!("capabilities are an object");
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("open a chromium session")
}

/// chromedriver's `POST /session/{id}/se/log` (`{"type": "browser"}`): the console log.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}
