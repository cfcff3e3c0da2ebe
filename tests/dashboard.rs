//! The web dashboard in a real browser: Debian's chromium, headless, driven
//! over WebDriver (chromedriver on a loopback port, `fantoccini`) against
//! `crowsnest serve` in-process with real containers on the private Docker
//! engine and a real registry (the control-plane world). Logs in (a wrong
//! token refused), sees updates and an error row, filters, rescans one
//! container and sees its row change without a reload, runs a trigger,
//! checks CSRF on session calls, and saves screenshots (light and dark,
//! 1280 and 390 wide) under `target/screenshots/`, printing their paths, the
//! page weight and the time to first render from Navigation Timing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crowsnest_testkit::control_plane::{AppAndLib, Served};
use crowsnest_testkit::engine::{self, Engine};
use crowsnest_testkit::{ports, wait};

const TOKEN: &str = "d4shb0ard-t0ken";
const PATIENCE: Duration = Duration::from_secs(60);

/// chromedriver on a free loopback port, killed on drop (it takes its browsers with it).
struct Chromedriver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Chromedriver {
    fn start() -> Self {
        let port = ports::free_port();
        let child = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt install chromium-driver)");
        // The guard first: a chromedriver that never answers is killed too.
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: tempfile::tempdir().expect("browser profile dir"),
        };
        wait::blocking_until(Duration::from_secs(20), "chromedriver to listen", || {
            chromedriver_ready(port)
        });
        driver
    }

    /// A headless chromium session with a fresh profile.
    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,900",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a WebDriver session")
    }
}

/// Whether chromedriver answers `GET /status` with 200 (it refuses a `Host`
/// without the port, so the kit's `ports::http_status` cannot ask it).
fn chromedriver_ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    // The status line is enough: chromedriver may keep the connection open.
    let mut answer = [0_u8; 64];
    let request =
        format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read(&mut answer).is_ok_and(|read| {
            String::from_utf8_lossy(answer.get(..read).unwrap_or_default())
                .split_whitespace()
                .nth(1)
                == Some("200")
        })
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls the page with `script` (returning a value or null) until it is not null.
async fn until(browser: &Client, what: &str, script: &str, args: Vec<Value>) -> Value {
    wait::eventually(PATIENCE, what, || {
        let args = args.clone();
        async move {
            browser
                .execute(script, args)
                .await
                .ok()
                .filter(|value| !value.is_null() && value != &Value::Bool(false))
        }
    })
    .await
}

/// The text of the row of container `id` when its status is `status`, else null.
const ROW_WITH_STATUS: &str = r#"
    const row = document.querySelector(`tr[data-id="${arguments[0]}"]`);
    return row && row.dataset.status === arguments[1] ? row.innerText : null;"#;

/// The visible text of the element `locator` finds.
async fn text_of(browser: &Client, locator: Locator<'_>) -> String {
    let element = browser
        .find(locator)
        .await
        .expect("the element is on the page");
    element.text().await.expect("the element's text")
}

/// Clicks the element `locator` finds.
async fn click(browser: &Client, locator: Locator<'_>) {
    let element = browser
        .find(locator)
        .await
        .expect("the element is on the page");
    element.click().await.expect("click the element");
}

/// Chooses `status` in the status filter ("" shows every status).
async fn filter_status(browser: &Client, status: &str) {
    let filter = browser
        .find(Locator::Id("filter-status"))
        .await
        .expect("the status filter");
    filter
        .select_by_value(status)
        .await
        .expect("choose a status");
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = crowsnest_testkit::repo_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    let png = browser.screenshot().await.expect("screenshot");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
}

async fn set_theme(browser: &Client, dark: bool) {
    let dark_now = browser
        .execute("return document.getElementById('theme-toggle').getAttribute('aria-pressed') === 'true';", vec![])
        .await
        .expect("theme state");
    if dark_now != Value::Bool(dark) {
        click(browser, Locator::Id("theme-toggle")).await;
    }
}

/// Sizes the viewport (not the window) to `width` x `height` CSS pixels.
async fn viewport(browser: &Client, width: u32, height: u32) {
    let outer = browser
        .execute("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];", vec![])
        .await
        .expect("window chrome");
    let extra = |index: usize| outer[index].as_u64().unwrap_or(0) as u32;
    browser
        .set_window_size(width + extra(0), height + extra(1))
        .await
        .expect("resize");
    let inner = browser
        .execute("return window.innerWidth;", vec![])
        .await
        .expect("inner width");
    println!("viewport width {inner} (asked {width})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let _serial = engine::exclusive().await;
    let world = AppAndLib::start();
    // A container whose registry cannot be reached: its row must show the error.
    let unreachable = "127.0.0.1:1/cn/gone:1.0";
    Engine::private().docker(&["tag", &world.app_image, unreachable]);
    let gone = world.containers.run(unreachable, &[]);
    let server = crowsnest::cli::serve::start(&world.serve_config(&format!("token = \"{TOKEN}\"")))
        .await
        .unwrap();
    let http = server.http_addr;
    let fx: Served<_> = world.served(server, http, Some(TOKEN));
    let (app, lib) = (fx.world.app.id.clone(), fx.world.lib.id.clone());

    let driver = Chromedriver::start();
    let browser = driver.browser().await;

    // Pages need a session: to the login form; a wrong token is refused.
    browser.goto(&format!("{}/", fx.base)).await.unwrap();
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/login"));
    let login = |token: &'static str| {
        let browser = browser.clone();
        async move {
            let field = browser.find(Locator::Id("token")).await.unwrap();
            field.clear().await.unwrap();
            field.send_keys(token).await.unwrap();
            click(&browser, Locator::Css("form button[type=submit]")).await;
        }
    };
    login("not-the-token").await;
    assert_eq!(
        text_of(&browser, Locator::Id("login-error")).await,
        "That token is not the configured one."
    );
    assert!(browser.get_named_cookie("crowsnest_session").await.is_err());
    login(TOKEN).await;
    browser
        .wait()
        .for_element(Locator::Id("watch-now"))
        .await
        .unwrap();
    let cookie = browser.get_named_cookie("crowsnest_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert_eq!(cookie.path(), Some("/"));

    // Nothing scanned yet; "Watch now" fills the table live (no reload).
    browser
        .execute("window.notReloaded = true;", vec![])
        .await
        .unwrap();
    until(
        &browser,
        "the page to follow the events",
        "return document.body.dataset.live === 'connected';",
        vec![],
    )
    .await;
    click(&browser, Locator::Id("watch-now")).await;
    let app_row = until(
        &browser,
        "the app row with a major update",
        ROW_WITH_STATUS,
        vec![json!(app), json!("update")],
    )
    .await;
    let app_row = app_row.as_str().unwrap().to_owned();
    assert!(
        app_row.contains("update: major") && app_row.contains("2.0"),
        "{app_row}"
    );
    let lib_row = until(
        &browser,
        "the lib row with a minor update",
        ROW_WITH_STATUS,
        vec![json!(lib), json!("update")],
    )
    .await;
    assert!(
        lib_row.as_str().unwrap().contains("update: minor"),
        "{lib_row}"
    );
    let error_row = until(
        &browser,
        "the error row",
        ROW_WITH_STATUS,
        vec![json!(gone.id), json!("error")],
    )
    .await;
    let error_row = error_row.as_str().unwrap().to_owned();
    assert!(
        error_row.contains("127.0.0.1:1"),
        "the error names the registry: {error_row}"
    );
    let status = text_of(&browser, Locator::Id("scan-status")).await;
    assert!(
        status.contains("Scan finished: 3 containers, 2 with updates"),
        "{status}"
    );
    let counts = text_of(&browser, Locator::Id("counts")).await;
    assert!(
        counts.contains("3 containers")
            && counts.contains("2 with updates")
            && counts.contains("1 error"),
        "{counts}"
    );
    let timing = browser
        .execute(
            "const n = performance.getEntriesByType('navigation')[0];
             const paint = performance.getEntriesByName('first-contentful-paint')[0];
             const assets = performance.getEntriesByType('resource')
                .filter(r => r.name.includes('/assets/')).map(r => [r.name, r.decodedBodySize]);
             return { html: n.decodedBodySize, assets, responseEnd: n.responseEnd,
                      domContentLoaded: n.domContentLoadedEventEnd, firstPaint: paint ? paint.startTime : null };",
            vec![],
        )
        .await
        .unwrap();
    println!("navigation timing and page weight (3 containers): {timing}");
    screenshot(&browser, "dashboard-light-1280").await;

    // Filter: only the updates, then only the errors.
    filter_status(&browser, "update").await;
    let visible = "return Array.from(document.querySelectorAll('#rows tr[data-id]')).filter(r => !r.hidden).map(r => r.dataset.id).sort();";
    let mut both = vec![app.clone(), lib.clone()];
    both.sort();
    assert_eq!(browser.execute(visible, vec![]).await.unwrap(), json!(both));
    filter_status(&browser, "error").await;
    assert_eq!(
        browser.execute(visible, vec![]).await.unwrap(),
        json!([gone.id])
    );
    filter_status(&browser, "").await;
    let search = browser.find(Locator::Id("search")).await.unwrap();
    search.send_keys("cn/lib").await.unwrap();
    assert_eq!(
        browser.execute(visible, vec![]).await.unwrap(),
        json!([lib])
    );
    search.clear().await.unwrap();
    browser
        .execute(
            "document.getElementById('filters').dispatchEvent(new Event('input'));",
            vec![],
        )
        .await
        .unwrap();

    // Rescan one container after its registry got a newer tag: its row
    // changes (offered 2.0, a major update, a new check time) without a reload.
    fx.world.registry.push("cn/lib", &["2.0"]);
    let checked =
        "return document.querySelector(`tr[data-id=\"${arguments[0]}\"]`).dataset.checked;";
    let before = browser.execute(checked, vec![json!(lib)]).await.unwrap();
    click(
        &browser,
        Locator::Css(&format!("button[data-action=rescan][data-id=\"{lib}\"]")),
    )
    .await;
    until(
        &browser,
        "the lib row's new check time",
        "const row = document.querySelector(`tr[data-id=\"${arguments[0]}\"]`);
         return row && row.dataset.checked !== arguments[1] ? row.dataset.checked : null;",
        vec![json!(lib), before],
    )
    .await;
    let offered = browser
        .execute("return document.querySelector(`tr[data-id=\"${arguments[0]}\"] .offered`).textContent;", vec![json!(lib)])
        .await
        .unwrap();
    assert_eq!(
        offered,
        json!("2.0"),
        "the rescanned row offers the new tag"
    );
    let lib_row = browser
        .execute(ROW_WITH_STATUS, vec![json!(lib), json!("update")])
        .await
        .unwrap();
    assert!(
        lib_row.as_str().unwrap().contains("update: major"),
        "{lib_row}"
    );
    assert_eq!(
        browser
            .execute("return window.notReloaded === true;", vec![])
            .await
            .unwrap(),
        json!(true)
    );

    // Dark theme, then phone width (rows become cards).
    set_theme(&browser, true).await;
    screenshot(&browser, "dashboard-dark-1280").await;
    viewport(&browser, 390, 844).await;
    let card = browser
        .execute(
            "return getComputedStyle(document.querySelector('#rows tr[data-id]')).display;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(card, json!("block"), "rows are cards at phone width");
    screenshot(&browser, "dashboard-dark-390").await;
    set_theme(&browser, false).await;
    screenshot(&browser, "dashboard-light-390").await;
    viewport(&browser, 1280, 900).await;

    // A session call without its CSRF token is refused; with it, accepted.
    let cookie_header = format!("crowsnest_session={}", cookie.value());
    let session_post = |csrf: Option<String>| {
        let mut request = fx
            .http
            .post(format!("{}/api/containers/{app}/watch", fx.base))
            .header("cookie", &cookie_header);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    assert_eq!(session_post(None).await.unwrap().status(), 403);
    let csrf = browser
        .execute(
            "return document.querySelector('meta[name=\"csrf-token\"]').content;",
            vec![],
        )
        .await
        .unwrap();
    let csrf = csrf.as_str().unwrap().to_owned();
    assert_eq!(
        session_post(Some("forged".into())).await.unwrap().status(),
        403
    );
    assert_eq!(session_post(Some(csrf)).await.unwrap().status(), 200);

    // One container's page: run a trigger (this one cannot deliver, and says so).
    browser
        .goto(&format!("{}/containers/{app}", fx.base))
        .await
        .unwrap();
    click(&browser, Locator::Css("#run-trigger button")).await;
    let result = until(
        &browser,
        "the trigger's result",
        "const text = document.getElementById('trigger-result').textContent;
         return text.startsWith('Trigger hook') ? text : null;",
        vec![],
    )
    .await;
    let result = result.as_str().unwrap();
    assert!(
        result.starts_with("Trigger hook failed:") && result.contains("hook"),
        "{result}"
    );
    let history = text_of(&browser, Locator::Id("detected")).await;
    assert!(
        history.contains("2.0"),
        "the detected update is in the history: {history}"
    );
    screenshot(&browser, "container-light-1280").await;

    // The configuration pages, secrets masked by the engine.
    for (path, expected) in [
        ("/triggers", "hook"),
        ("/plugins", "webhook"),
        ("/watchers", "local"),
        ("/registries", "Registries"),
    ] {
        browser.goto(&format!("{}{path}", fx.base)).await.unwrap();
        let text = text_of(&browser, Locator::Id("main")).await;
        assert!(text.contains(expected), "{path}: {text}");
    }

    // Log out: the session is gone.
    browser.goto(&format!("{}/", fx.base)).await.unwrap();
    click(&browser, Locator::Css("form[action='/logout'] button")).await;
    browser
        .wait()
        .for_element(Locator::Id("token"))
        .await
        .unwrap();
    assert_eq!(session_post(None).await.unwrap().status(), 401);

    browser.close().await.unwrap();
    drop(driver);
    let Served { server, world, .. } = fx;
    server.shutdown().await;
    drop(world);
    Engine::private().docker_ok(&["rmi", unreachable]);
}
