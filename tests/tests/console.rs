//! The operator console in a real headless Chromium against the real API, worker,
//! PostgreSQL and Redis: sign in, create a rule in the editor (a 422 shown at its
//! field, fixed, saved), preview its template, enable/disable it in the list (a 412
//! shown as "changed elsewhere"), send an event and watch its execution appear, test
//! an event of the input stream live, backtest, clear a cooldown. Every page is
//! checked for unlabelled controls, keyboard focus that shows, requests to other
//! origins and console messages; a screenshot of each is saved
//! (`<target>/console-screenshots/`, or `CONSOLE_SCREENSHOTS`).

use anyhow::{ensure, Context as _};
use rules_e2e::browser::Browser;
use rules_e2e::worker::{Harness, LS};
use rules_e2e::{api_env, free_port, http_client, wait_http_ok, Process, TEST_KEY};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

fn screenshot_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CONSOLE_SCREENSHOTS") {
        // A relative directory is of the workspace (tests run in their package's).
        return rules_e2e::workspace_root().join(dir);
    }
    // target/<profile>/deps/<test> → target/console-screenshots
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(std::env::temp_dir)
        .join("console-screenshots")
}

/// Controls without an accessible name, on the page as shown.
const UNLABELLED: &str = r#"
    return [...document.querySelectorAll('input, select, textarea, button, a[href]')]
      .filter((el) => el.offsetParent !== null)
      .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
        || el.getAttribute('aria-labelledby') || el.textContent.trim()))
      .map((el) => el.outerHTML.slice(0, 160));
"#;

/// Text whose contrast with its background is below WCAG AA (4.5:1, or 3:1 for large
/// text); disabled controls and the chart's SVG labels are left out.
const LOW_CONTRAST: &str = r#"
    const channels = (s) => (s.match(/[\d.]+/g) || []).map(Number);
    const luminance = (c) => {
      const [r, g, b] = c.slice(0, 3).map((v) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = channels(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c;
      }
      return [255, 255, 255];
    };
    const low = [];
    for (const el of document.querySelectorAll('body *')) {
      if (el.offsetParent === null || el.closest('svg') || el.matches(':disabled')) continue;
      if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
      const style = getComputedStyle(el);
      const [a, b] = [luminance(channels(style.color)), luminance(background(el))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
      if (ratio < (large ? 3 : 4.5)) {
        low.push(`${el.tagName}.${el.className} ${ratio.toFixed(2)}: ${el.textContent.trim().slice(0, 40)}`);
      }
    }
    return low;
"#;

/// Resources the page loaded from an origin other than its own.
const FOREIGN: &str = r#"
    return performance.getEntriesByType('resource').map((e) => e.name)
      .filter((url) => !url.startsWith(location.origin + '/'));
"#;

/// The text of the `<dd>` after the `<dt>` whose text is `arguments[1]`, within `arguments[0]`.
const FACT: &str = r#"
    const scope = document.querySelector(arguments[0]);
    const dt = [...(scope ? scope.querySelectorAll('dt') : [])].find((d) => d.textContent === arguments[1]);
    return dt ? dt.nextElementSibling.textContent : null;
"#;

struct Console {
    browser: Browser,
    base: String,
    shots: PathBuf,
}

impl Console {
    /// A browser over the console of the API at `base`.
    async fn start(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            browser: Browser::start(1366, 900, "Europe/Berlin").await?,
            base: base.to_owned(),
            shots: screenshot_dir(),
        })
    }

    /// Signs in with the test key through the form.
    async fn sign_in(&self) -> anyhow::Result<()> {
        self.open("").await?;
        self.browser
            .type_into("input[type=password]", TEST_KEY)
            .await?;
        self.browser.click_text("Sign in").await?;
        self.browser.find("h1#rules-title").await?;
        Ok(())
    }

    /// The names of the rules table's rows, top to bottom.
    async fn rule_names(&self) -> anyhow::Result<Vec<String>> {
        let names = self
            .browser
            .eval(
                "return [...document.querySelectorAll('table.rules tbody th a')].map((a) => a.textContent);",
                vec![],
            )
            .await?;
        Ok(names
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits until the rules table shows `n` rows; returns their names.
    async fn wait_rows(&self, n: usize) -> anyhow::Result<Vec<String>> {
        let start = std::time::Instant::now();
        loop {
            let names = self.rule_names().await?;
            if names.len() == n {
                return Ok(names);
            }
            if start.elapsed() > rules_e2e::browser::WAIT {
                anyhow::bail!(
                    "the rules table shows {} rows, not {n}: {names:?}",
                    names.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the browser's console logged beyond the failed requests a test provoked
    /// on purpose (by status). The browser's own pages (`chrome://`, such as the new
    /// tab page a fresh profile may open first) are not the console's and are left out.
    async fn unexpected_console_messages(
        &self,
        provoked: &[u16],
    ) -> anyhow::Result<Vec<rules_e2e::browser::LogEntry>> {
        Ok(self
            .browser
            .console_log()
            .await?
            .into_iter()
            .filter(|e| !e.message.starts_with("chrome://"))
            .filter(|e| {
                !(e.source == "network"
                    && provoked
                        .iter()
                        .any(|s| e.message.contains(&format!("status of {s} "))))
            })
            .collect())
    }

    async fn open(&self, hash: &str) -> anyhow::Result<()> {
        self.browser
            .client
            .goto(&format!("{}/console/{hash}", self.base))
            .await?;
        Ok(())
    }

    /// The checks every page must pass, then its screenshot.
    async fn page_done(&self, name: &str) -> anyhow::Result<()> {
        let unlabelled = self.browser.eval(UNLABELLED, vec![]).await?;
        ensure!(
            unlabelled.as_array().is_some_and(|a| a.is_empty()),
            "page {name}: controls without a label: {unlabelled}"
        );
        let low = self.browser.eval(LOW_CONTRAST, vec![]).await?;
        ensure!(
            low.as_array().is_some_and(|a| a.is_empty()),
            "page {name}: text below WCAG AA contrast: {low}"
        );
        let foreign = self.browser.eval(FOREIGN, vec![]).await?;
        ensure!(
            foreign.as_array().is_some_and(|a| a.is_empty()),
            "page {name}: requests to another origin: {foreign}"
        );
        let path = self.browser.screenshot(&self.shots, name).await?;
        eprintln!("screenshot: {}", path.display());
        Ok(())
    }

    async fn fact(&self, scope: &str, term: &str) -> anyhow::Result<Value> {
        self.browser
            .eval(FACT, vec![json!(scope), json!(term)])
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_authors_tests_watches_and_clears_a_rule_in_the_browser() -> anyhow::Result<()>
{
    let mut harness = Harness::new("console").await?;
    harness.start_worker(&[]).await?;
    let port = free_port()?;
    let _api = Process::start(
        "rules-api",
        &api_env(
            &harness.db.url,
            port,
            true,
            &[("RULES__WORKER__STREAMS", harness.stream())],
        ),
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{base}/health/ready"), Duration::from_secs(20)).await?;
    let console = Console::start(&base).await?;
    let walked = walk(&console, &harness, &base).await;
    if let Err(error) = &walked {
        // What the page showed and logged when it went wrong.
        let _ = console.browser.screenshot(&console.shots, "failed").await;
        eprintln!("console log: {:#?}", console.browser.console_log().await);
        eprintln!("failed: {error:#}");
    }
    walked?;
    console.browser.close().await?;
    Ok(())
}

async fn walk(console: &Console, harness: &Harness, base: &str) -> anyhow::Result<()> {
    let b = &console.browser;
    let http = http_client();

    // Sign in: a wrong key is refused at the field, the right one is kept for the tab.
    console.open("").await?;
    b.type_into("input[type=password]", "not-the-key").await?;
    b.click_text("Sign in").await?;
    b.wait_text(".field-error", "This key is not accepted.")
        .await?;
    console.page_done("sign-in").await?;
    b.type_into("input[type=password]", TEST_KEY).await?;
    b.click_text("Sign in").await?;
    b.wait_text("main", "No rules match these filters.").await?;
    let stored = b
        .eval(
            "return sessionStorage.getItem('rule-engine-api-key')",
            vec![],
        )
        .await?;
    ensure!(
        stored == json!(TEST_KEY),
        "the key is kept in session storage"
    );
    ensure!(
        !b.client.current_url().await?.as_str().contains(TEST_KEY),
        "the key never appears in the URL"
    );

    // Keyboard: the first Tab lands on the header's first link, with a visible ring.
    b.eval("document.activeElement.blur(); return null;", vec![])
        .await?;
    tab(b).await?;
    let focused = b
        .eval(
            r#"const el = document.activeElement;
               return [el.textContent, el.matches(':focus-visible'), getComputedStyle(el).outlineStyle];"#,
            vec![],
        )
        .await?;
    ensure!(
        focused[1] == json!(true) && focused[2] != json!("none"),
        "keyboard focus shows a ring: {focused}"
    );

    // The editor: a rule with a bad livestream id is refused, shown at its field.
    b.click_text("New rule").await?;
    let editor_json = "textarea.code";
    b.find(editor_json).await?;
    let out = harness.out();
    let draft = json!({
        "livestream_id": "not-a-uuid",
        "name": "Console alert",
        "trigger_config": {"event_types": ["donation.received"],
                           "condition": {"field": "data.amount", "op": "gte", "value": 10}},
        "actions": [{"type": "publish", "stream": out,
                     "payload": {"text": "{{ event.data.user.name }} donated {{ event.data.amount }}!"}}],
        "cooldown_seconds": 60,
        "cooldown_key": "data.user.id",
        "enabled": true
    });
    b.type_into(editor_json, &draft.to_string()).await?;
    b.click_text("Create rule").await?;
    let livestream_input = "//label[normalize-space(.)='Livestream id']/following-sibling::input";
    b.wait_text(".summary", "The rule was not saved: 1 problem")
        .await?;
    let invalid = b
        .client
        .find(fantoccini::Locator::XPath(livestream_input))
        .await?;
    ensure!(
        invalid.attr("aria-invalid").await?.as_deref() == Some("true"),
        "the livestream id field is marked invalid"
    );
    let described = invalid.attr("aria-describedby").await?.unwrap_or_default();
    let error_id = described
        .split_whitespace()
        .find(|id| id.ends_with("-error"))
        .context("the field is described by its error")?;
    let error_text = b.find(&format!("#{error_id}")).await?.text().await?;
    ensure!(
        !error_text.is_empty(),
        "the field's error is shown next to it"
    );
    console.page_done("editor-422").await?;

    // Fixed in the form field (the JSON follows), saved.
    invalid.clear().await?;
    invalid.send_keys(LS).await?;
    let json_now = b.find(editor_json).await?.prop("value").await?;
    ensure!(
        json_now.as_deref().is_some_and(|j| j.contains(LS)),
        "the form field writes the JSON: {json_now:?}"
    );
    b.click_text("Create rule").await?;
    b.wait_text("#status", "Saved Console alert (version 1)")
        .await?;
    let url = b.client.current_url().await?;
    let rule_id = url
        .fragment()
        .and_then(|f| f.strip_prefix("/rules/"))
        .context("after a create the editor shows the rule")?
        .to_owned();
    let listed = get_json(&http, &format!("{base}/api/rules")).await?;
    ensure!(
        listed["items"].as_array().map(Vec::len) == Some(1)
            && listed["items"][0]["id"] == json!(rule_id),
        "one rule stored: {listed}"
    );
    b.find("h1").await?;
    b.wait_text("h1", "Edit: Console alert").await?;

    // Template preview against the sample event.
    b.click_text("Preview actions").await?;
    b.wait_text(".preview-out", "alice donated 25!").await?;
    console.page_done("editor").await?;

    // The list: changed elsewhere (a 412), reloaded, disabled and enabled in place.
    console.open("#/rules").await?;
    let toggle = format!("tr[data-rule-id='{rule_id}'] input[type=checkbox]");
    b.find(&toggle).await?;
    let patched = http
        .patch(format!("{base}/api/rules/{rule_id}"))
        .bearer_auth(TEST_KEY)
        .header("Content-Type", "application/merge-patch+json")
        .header("If-Match", "\"1\"")
        .body(r#"{"description": "changed by someone else"}"#)
        .send()
        .await?;
    ensure!(patched.status() == 200, "patch: {}", patched.status());
    b.click(&toggle).await?;
    b.wait_text(
        &format!("tr[data-rule-id='{rule_id}'] .row-note"),
        "Changed elsewhere, reload.",
    )
    .await?;
    ensure!(
        b.find(&toggle).await?.prop("checked").await?.as_deref() == Some("true"),
        "a refused change leaves the box as it was"
    );
    b.click_text("Reload").await?;
    b.wait_text(&format!("tr[data-rule-id='{rule_id}'] td.version"), "2")
        .await?;
    b.click(&toggle).await?;
    b.wait_text("#status", "Console alert disabled").await?;
    b.click(&toggle).await?;
    b.wait_text("#status", "Console alert enabled").await?;
    let rule = get_json(&http, &format!("{base}/api/rules/{rule_id}")).await?;
    ensure!(
        rule["enabled"] == json!(true) && rule["version"] == json!(4),
        "{rule}"
    );
    console.page_done("rules").await?;

    // An event arrives; its execution appears on the rule's page.
    harness.wait_rules_loaded(1).await?;
    let event_id = harness
        .send(
            "donation.received",
            json!({"amount": 25, "currency": "USD", "user": {"id": "u-42", "name": "alice"}}),
        )
        .await?;
    console.open(&format!("#/rules/{rule_id}/activity")).await?;
    let row = format!("tr[data-event-id='{event_id}']");
    b.wait_text(&row, "succeeded").await?;
    b.wait_text(&row, "publish").await?;
    b.wait_text(".analytics .totals", "1 executed").await?;
    b.find(".analytics figure.chart svg polyline").await?;
    // In the browser's time zone (the browser runs in Europe/Berlin).
    b.wait_text(".analytics figcaption", "time zone Europe/Berlin")
        .await?;
    console.page_done("activity").await?;

    // The test panel on the event from the input stream: it matched, and would not
    // execute now (already decided, and cooling down).
    console.open(&format!("#/rules/{rule_id}/test")).await?;
    b.click_text("Show recent events").await?;
    b.click(".recent-list button").await?;
    let chosen = b.find("textarea.code").await?.prop("value").await?;
    ensure!(
        chosen
            .as_deref()
            .is_some_and(|e| e.contains(&event_id.to_string())),
        "the recent event fills the editor: {chosen:?}"
    );
    b.click_text("Run the test").await?;
    b.wait_text(".test-out", "The rule matches").await?;
    b.wait_text(".live", "It would not execute now").await?;
    b.find(".live li[data-reason='already_processed']").await?;
    b.find("ul.trace li[data-path='trigger_config.condition'][data-result='true']")
        .await?;
    // Another donation of the same donor, typed in: it meets the donor's cooldown.
    let another = json!({"id": uuid::Uuid::new_v4(), "type": "donation.received", "livestream_id": LS,
                         "data": {"amount": 30, "user": {"id": "u-42", "name": "alice"}}});
    b.type_into("textarea.code", &another.to_string()).await?;
    b.click_text("Run the test").await?;
    b.find(".live li[data-reason='cooldown_active']").await?;
    b.find("ul.trace li[data-path='trigger_config.condition'][data-result='true']")
        .await?;
    let left = console.fact(".live", "Cooldown left").await?;
    ensure!(left.as_str().is_some_and(|s| s.ends_with(" s")), "{left}");
    console.page_done("test").await?;

    // Backtest over the last hour: one match, executed; the chart and the sample.
    console.open(&format!("#/rules/{rule_id}/backtest")).await?;
    b.click_text("Run the backtest").await?;
    b.find(".backtest-out figure.chart svg polyline").await?;
    ensure!(console.fact(".backtest-out", "Matched").await? == json!("1"));
    ensure!(console.fact(".backtest-out", "Would execute").await? == json!("1"));
    b.find(".samples ul.trace").await?;
    console.page_done("backtest").await?;

    // Cooldowns: another donor's donation starts a second one; the first donor's
    // is cleared with its button, then all with the other.
    let second = harness
        .send(
            "donation.received",
            json!({"amount": 12, "user": {"id": "u-7", "name": "bob"}}),
        )
        .await?;
    console.open(&format!("#/rules/{rule_id}/activity")).await?;
    b.wait_text(&format!("tr[data-event-id='{second}']"), "succeeded")
        .await?;
    console
        .open(&format!("#/rules/{rule_id}/cooldowns"))
        .await?;
    b.find("tr[data-scope='v:u-7']").await?;
    b.wait_text("tr[data-scope='v:u-42']", "\"u-42\"").await?;
    console.page_done("cooldowns").await?;
    b.click("tr[data-scope='v:u-42'] button").await?;
    b.wait_text("#status", "Cleared the cooldown of \"u-42\"")
        .await?;
    // The status line comes before the list is drawn again: wait for the list.
    rules_e2e::worker::eventually(std::time::Duration::from_secs(10), || async {
        let rows = b
            .client
            .find_all(fantoccini::Locator::Css("tr[data-scope]"))
            .await?;
        Ok(rows.len() == 1)
    })
    .await
    .map_err(|e| anyhow::anyhow!("one cooldown left, u-7's: {e}"))?;
    b.find("tr[data-scope='v:u-7']").await?;
    b.click_text("Clear all cooldowns").await?;
    b.wait_text(".cooldowns", "No cooldown is running").await?;
    let left = get_json(&http, &format!("{base}/api/rules/{rule_id}/cooldowns")).await?;
    ensure!(left["cooldowns"] == json!([]), "{left}");

    // The console logged nothing but the failed requests the test provoked on
    // purpose (the wrong key's 401, the 422, the 412).
    let unexpected = console
        .unexpected_console_messages(&[401, 422, 412])
        .await?;
    ensure!(unexpected.is_empty(), "console messages: {unexpected:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_list_filters_and_pages_in_the_browser() -> anyhow::Result<()> {
    let db = rules_e2e::TestDb::migrated().await?;
    let port = free_port()?;
    let _api = Process::start("rules-api", &api_env(&db.url, port, true, &[]))?;
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{base}/health/ready"), Duration::from_secs(20)).await?;
    let http = http_client();
    let other = "11111111-0000-4000-8000-000000000000";
    // 30 rules created in order: 27 of LS (`rule 26` disabled), 3 of another
    // livestream; odd ones listen to follows.
    for i in 0..30 {
        let livestream = if i >= 27 { other } else { LS };
        let rule = json!({
            "livestream_id": livestream,
            "name": format!("rule {i:02}"),
            "trigger_config": {"event_types": [if i % 2 == 0 { "donation.received" } else { "follow" }]},
            "actions": [{"type": "log", "message": "hi"}],
            "enabled": i != 26,
        });
        let created = http
            .post(format!("{base}/api/rules"))
            .bearer_auth(TEST_KEY)
            .json(&rule)
            .send()
            .await?;
        ensure!(created.status() == 201, "create: {}", created.status());
    }
    let console = Console::start(&base).await?;
    let listed = list_and_page(&console).await;
    if let Err(error) = &listed {
        let _ = console
            .browser
            .screenshot(&console.shots, "failed-list")
            .await;
        eprintln!("failed: {error:#}");
    }
    listed?;
    console.browser.close().await?;
    Ok(())
}

async fn list_and_page(console: &Console) -> anyhow::Result<()> {
    let b = &console.browser;
    let http = http_client();
    console.sign_in().await?;
    // Newest first, 25 a page; the next page has the rest; and back.
    let first = console.wait_rows(25).await?;
    ensure!(first[0] == "rule 29" && first[24] == "rule 05", "{first:?}");
    b.click_text("Next page").await?;
    let second = console.wait_rows(5).await?;
    ensure!(
        second[0] == "rule 04" && second[4] == "rule 00",
        "{second:?}"
    );
    ensure!(
        b.client
            .find(fantoccini::Locator::XPath(
                "//button[normalize-space(.)='Next page']"
            ))
            .await
            .is_err(),
        "the last page has no next"
    );
    b.click_text("Previous page").await?;
    ensure!(console.wait_rows(25).await? == first);

    // Filters: a livestream (kept in the URL), then disabled only, then a type.
    b.type_into("form.filters input[type=text]", LS).await?;
    b.click_text("Apply filters").await?;
    ensure!(console.wait_rows(25).await?[0] == "rule 26");
    ensure!(b
        .client
        .current_url()
        .await?
        .as_str()
        .contains(&format!("livestream_id={LS}")));
    b.click_text("Next page").await?;
    ensure!(console.wait_rows(2).await? == ["rule 01", "rule 00"]);
    b.click("form.filters select option[value='false']").await?;
    b.click_text("Apply filters").await?;
    ensure!(console.wait_rows(1).await? == ["rule 26"]);
    b.click("form.filters select option[value='']").await?;
    let texts = b
        .client
        .find_all(fantoccini::Locator::Css("form.filters input[type=text]"))
        .await?;
    texts
        .get(1)
        .context("the event type filter")?
        .send_keys("follow")
        .await?;
    b.click_text("Apply filters").await?;
    let follows = console.wait_rows(13).await?;
    ensure!(follows[0] == "rule 25", "{follows:?}");
    b.client.refresh().await?;
    ensure!(
        console.wait_rows(13).await? == follows,
        "a reload keeps the filters"
    );

    // A rule with a threshold: the test panel says k of n, and why not now.
    let listed = get_json(
        &http,
        &format!("{}/api/rules?livestream_id={LS}&limit=1", console.base),
    )
    .await?;
    let newest = listed["items"][0]["id"]
        .as_str()
        .context("a rule id")?
        .to_owned();
    let patched = http
        .patch(format!("{}/api/rules/{newest}", console.base))
        .bearer_auth(TEST_KEY)
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"enabled": true, "trigger_config": {"event_types": ["donation.received"], "threshold": {"count": 3, "window_seconds": 60}}}"#)
        .send()
        .await?;
    ensure!(patched.status() == 200, "patch: {}", patched.status());
    console.open(&format!("#/rules/{newest}/test")).await?;
    b.click_text("Run the test").await?;
    b.find(".live li[data-reason='threshold_not_reached']")
        .await?;
    let progress = console.fact(".live", "Threshold").await?;
    ensure!(progress == json!("1 of 3 in 1 min"), "{progress}");

    // Deleted from its editor, after a second press confirms.
    console.open(&format!("#/rules/{newest}")).await?;
    b.wait_text("h1", "Edit: rule 26").await?;
    b.click_text("Delete rule").await?;
    b.click_text("Confirm: delete this rule").await?;
    b.wait_text("#status", "Deleted rule 26").await?;
    ensure!(console.wait_rows(25).await?[0] == "rule 29");
    let gone = http
        .get(format!("{}/api/rules/{newest}", console.base))
        .bearer_auth(TEST_KEY)
        .send()
        .await?;
    ensure!(gone.status() == 404, "deleted: {}", gone.status());

    // A bad filter is the API's answer shown, not a blank page.
    console.open("#/rules?livestream_id=not-a-uuid").await?;
    b.find(".results .problems").await?;
    let unexpected = console.unexpected_console_messages(&[400]).await?;
    ensure!(unexpected.is_empty(), "console messages: {unexpected:#?}");
    Ok(())
}

/// An authorized GET of `url`'s JSON.
async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .bearer_auth(TEST_KEY)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// One press of Tab, through the WebDriver actions API (a real key event).
async fn tab(b: &Browser) -> anyhow::Result<()> {
    use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
    use fantoccini::key::Key;
    let key = char::from(Key::Tab);
    let actions = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    b.client.perform_actions(actions).await?;
    Ok(())
}
