//! The web console over plain HTTP: every page renders and escapes what it shows, changes need an
//! admin session with its CSRF token, the console is read-only without an admin token, pages need
//! no client key, a form's accept makes the gateway route to the new model, and pages stay fast
//! on a full day of log.

use freerouter::store::{RequestLogRow, Store, SuggestionKind, UnreservedUse};
use freerouter::time::now_ms;
use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::Simulator;
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

const ADMIN: &str = "console-admin-token-1";

fn config(sim: &Simulator) -> GatewayConfig {
    GatewayConfig::new()
        .set("auth.admin_token", ADMIN)
        .provider("lab", sim)
        .route("lab", "m1", 1)
        .route("lab", "m2", 2)
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// POSTs a form with the given cookie (may be empty) and extra headers.
async fn post(
    gateway: &TestGateway,
    path: &str,
    cookie: &str,
    body: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client()
        .post(gateway.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(form(body));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn get_html(gateway: &TestGateway, path: &str, cookie: &str) -> (u16, String) {
    let response = client()
        .get(gateway.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Signs in with the admin token; returns the cookie to send (`name=value`).
async fn sign_in(gateway: &TestGateway) -> String {
    let response = post(gateway, "/login", "", &[("token", ADMIN)], &[]).await;
    assert_eq!(response.status(), 303);
    let set = header(&response, "set-cookie");
    set.split(';').next().unwrap().to_string()
}

/// The CSRF token a page's forms carry.
fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .expect("the page holds a CSRF field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn route_enabled(gateway: &TestGateway, route: &str) -> bool {
    Store::open(&gateway.db_path, Duration::from_secs(5))
        .await
        .unwrap()
        .get_route(route)
        .await
        .unwrap()
        .unwrap()
        .enabled
}

#[tokio::test]
async fn every_page_renders_without_javascript_and_escapes_what_it_shows() {
    let sim = Simulator::start().await;
    sim.model("m1");
    sim.model("m2");
    sim.model("evil");
    let gateway = config(&sim)
        .route_with(
            "lab",
            "evil",
            3,
            r#"display_name = "<script>alert('route')</script>"
tags = ["<b>tag</b>"]"#,
        )
        .start()
        .await;
    assert_eq!(gateway.chat(&ask("auto", "hello")).await.status(), 200);
    let store = Store::open(&gateway.db_path, Duration::from_secs(5))
        .await
        .unwrap();
    store
        .suggest(
            SuggestionKind::AddRoute,
            "lab/<img src=x onerror=alert(1)>",
            "lab",
            "<img src=x onerror=alert(1)>",
            &json!({"listing": "<script>alert('evidence')</script>"}),
            now_ms(),
        )
        .await
        .unwrap();

    for path in ["/", "/models", "/status", "/chat", "/login"] {
        let response = gateway.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let content_type = header(&response, "content-type");
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        let csp = header(&response, "content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert_eq!(header(&response, "x-frame-options"), "DENY");
        let html = response.text().await.unwrap();
        assert!(html.starts_with("<!doctype html>"), "{path}");
        assert!(!html.contains("<script>alert"), "{path} let markup through");
        assert!(!html.contains("<img src=x"), "{path} let markup through");
        assert!(!html.contains("<b>tag"), "{path} let markup through");
        // Only the playground loads a script; the other pages are plain HTML.
        assert_eq!(html.contains("<script"), path == "/chat", "{path}");
    }
    let (_, models) = get_html(&gateway, "/models", "").await;
    assert!(models.contains("&lt;script&gt;alert(&#39;route&#39;)&lt;/script&gt;"));
    assert!(models.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(models.contains("&quot;&lt;script&gt;alert(&#39;evidence&#39;)"));
    assert!(models.contains("lab/m1") && models.contains("lab/m2"));
    let (_, overview) = get_html(&gateway, "/", "").await;
    assert!(overview.contains("Providers with keys") && overview.contains(">lab<"));
    assert!(
        overview.contains("<svg class=\"chart\""),
        "the traffic chart"
    );
    let (_, status) = get_html(&gateway, "/status", "").await;
    assert!(status.contains("Quota per key") && status.contains("<svg class=\"chart\""));
    let (_, chat) = get_html(&gateway, "/chat", "").await;
    assert!(chat.contains(r#"<option value="lab/m1">"#));
    for asset in [
        "/assets/console.css",
        "/assets/chat.js",
        "/assets/favicon.svg",
    ] {
        assert_eq!(gateway.get(asset).await.status(), 200, "{asset}");
    }
}

#[tokio::test]
async fn changes_need_an_admin_session_with_its_csrf_token_from_this_site() {
    let sim = Simulator::start().await;
    sim.model("m1");
    sim.model("m2");
    let gateway = config(&sim).start().await;
    let disable = [("route", "lab/m1"), ("csrf", "")];

    // Without a session: refused, and the forms are not even shown.
    let refused = post(&gateway, "/models/disable", "", &disable, &[]).await;
    assert_eq!(refused.status(), 403);
    assert!(route_enabled(&gateway, "lab/m1").await);
    let (_, anonymous) = get_html(&gateway, "/models", "").await;
    assert!(!anonymous.contains(r#"action="/models/disable""#));
    assert!(anonymous.contains(r#"href="/login""#));
    let forged = "freerouter_console=1.abc.0000";
    assert_eq!(
        post(&gateway, "/models/disable", forged, &disable, &[])
            .await
            .status(),
        403
    );

    // A wrong token signs nobody in.
    let wrong = post(&gateway, "/login", "", &[("token", "guess")], &[]).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(header(&wrong, "set-cookie"), "");

    // The right one sets an HttpOnly, SameSite=Strict cookie that does not hold the token;
    // Secure only when the browser came over TLS (browsers drop it on plain http).
    let response = post(&gateway, "/login", "", &[("token", ADMIN)], &[]).await;
    assert_eq!(response.status(), 303);
    let set = header(&response, "set-cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure") && !set.contains(ADMIN), "{set}");
    let over_tls = post(
        &gateway,
        "/login",
        "",
        &[("token", ADMIN)],
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert!(header(&over_tls, "set-cookie").contains("; Secure"));

    let cookie = sign_in(&gateway).await;
    let (_, page) = get_html(&gateway, "/models", &cookie).await;
    let csrf = csrf_of(&page);
    // The session alone is not enough: the form's CSRF token must come with it…
    let no_csrf = post(&gateway, "/models/disable", &cookie, &disable, &[]).await;
    assert_eq!(no_csrf.status(), 403);
    let with = [("route", "lab/m1"), ("csrf", csrf.as_str())];
    // …and a browser must say the form came from this site.
    let cross_site = post(
        &gateway,
        "/models/disable",
        &cookie,
        &with,
        &[("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(cross_site.status(), 403);
    assert!(route_enabled(&gateway, "lab/m1").await);

    let origin = gateway.url.clone();
    let done = post(
        &gateway,
        "/models/disable",
        &cookie,
        &with,
        &[("origin", &origin)],
    )
    .await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        header(&done, "location"),
        "/models?done=disabled&route=lab%2Fm1"
    );
    assert!(!route_enabled(&gateway, "lab/m1").await);
    let rank = [("route", "lab/m2"), ("rank", "7"), ("csrf", csrf.as_str())];
    assert_eq!(
        post(&gateway, "/models/rank", &cookie, &rank, &[])
            .await
            .status(),
        303
    );
    let unknown = [("route", "lab/nope"), ("csrf", csrf.as_str())];
    assert_eq!(
        post(&gateway, "/models/enable", &cookie, &unknown, &[])
            .await
            .status(),
        404
    );
    let (_, after) = get_html(&gateway, "/models?done=ranked&route=lab%2Fm2", &cookie).await;
    assert!(after.contains("lab/m2 has its new rank."));

    // Signing out clears the cookie.
    let out = post(&gateway, "/logout", &cookie, &[("csrf", &csrf)], &[]).await;
    assert!(header(&out, "set-cookie").contains("Max-Age=0"));
}

#[tokio::test]
async fn without_an_admin_token_the_console_is_read_only() {
    let sim = Simulator::start().await;
    sim.model("m1");
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        .route("lab", "m1", 1)
        .start()
        .await;
    let (_, models) = get_html(&gateway, "/models", "").await;
    assert!(models.contains("Read-only: no admin token is configured"));
    assert!(!models.contains("<form method=\"post\" action=\"/models/"));
    let (_, login) = get_html(&gateway, "/login", "").await;
    assert!(
        !login.contains(r#"name="token""#),
        "no sign-in form to fill"
    );
    assert_eq!(
        post(&gateway, "/login", "", &[("token", "anything")], &[])
            .await
            .status(),
        403
    );
    let disable = [("route", "lab/m1"), ("csrf", "")];
    let refused = post(&gateway, "/models/disable", "", &disable, &[]).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("read-only"));
    assert!(route_enabled(&gateway, "lab/m1").await);
}

#[tokio::test]
async fn pages_need_no_client_key_but_the_playground_asks_for_one() {
    let sim = Simulator::start().await;
    sim.model("m1");
    let gateway = config(&sim)
        .set("auth.api_keys", "sk-client-1")
        .start()
        .await;
    for path in ["/", "/models", "/status", "/chat", "/assets/chat.js"] {
        assert_eq!(gateway.get(path).await.status(), 200, "{path}");
    }
    let (_, chat) = get_html(&gateway, "/chat", "").await;
    assert!(
        chat.contains(r#"id="api-key""#),
        "a field for the client key"
    );
    assert_eq!(
        gateway.chat(&ask("auto", "hi")).await.status(),
        401,
        "/v1 still needs the key"
    );
    let open = GatewayConfig::new()
        .provider("lab", &sim)
        .route("lab", "m1", 1)
        .start()
        .await;
    let (_, chat) = get_html(&open, "/chat", "").await;
    assert!(!chat.contains(r#"id="api-key""#), "no key to ask for");
}

#[tokio::test]
async fn accepting_a_suggestion_in_the_form_makes_the_gateway_route_to_it() {
    let sim = Simulator::start().await;
    sim.model("m1");
    sim.model("m2");
    sim.model("fresh:free").answer("fresh answer");
    sim.list_extra(json!({"id": "fresh:free", "object": "model"}));
    let gateway = config(&sim).start().await;
    let refreshed = gateway
        .http
        .post(gateway.url("/v1/gateway/endpoint-diagnosis/refresh"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let strict = || async {
        gateway
            .http
            .post(gateway.url("/v1/chat/completions"))
            .header("x-freerouter-strict", "true")
            .json(&ask("lab/fresh:free", "hi"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(
        strict().await.status(),
        404,
        "a suggested route waits disabled"
    );

    let cookie = sign_in(&gateway).await;
    let (_, page) = get_html(&gateway, "/models", &cookie).await;
    assert!(page.contains(r#"data-route="lab/fresh:free""#));
    let at = page.find(r#"<article class="suggestion" data-route="lab/fresh:free""#);
    let card = &page[at.expect("a card for the suggestion")..];
    let id_at = card.find(r#"name="id" value=""#).unwrap() + r#"name="id" value=""#.len();
    let id = &card[id_at..id_at + card[id_at..].find('"').unwrap()];
    let csrf = csrf_of(&page);
    let accepted = post(
        &gateway,
        "/models/accept",
        &cookie,
        &[("id", id), ("csrf", &csrf)],
        &[],
    )
    .await;
    assert_eq!(accepted.status(), 303);
    let again = post(
        &gateway,
        "/models/accept",
        &cookie,
        &[("id", id), ("csrf", &csrf)],
        &[],
    )
    .await;
    assert_eq!(again.status(), 404, "only a pending suggestion is accepted");

    // The gateway sees the catalog change within its reload interval and routes there.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = strict().await;
        if response.status() == 200 {
            assert_eq!(header(&response, "x-gateway-route"), "lab/fresh:free");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the accepted route is never used"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sim.calls("fresh:free") >= 1);
}

/// A request log row of the synthetic day.
fn log_row(i: usize, at_ms: i64, routes: &[String]) -> RequestLogRow {
    let route = &routes[i % routes.len()];
    let provider = route.split('/').next().unwrap().to_string();
    let (status, attempts, outcome, trail) = match i % 100 {
        // 1 % fail, 4 % fall back, the rest go through at once.
        0 => (
            502,
            3,
            "all_routes_failed",
            format!("{route}:5xx,{route}:timeout,{route}:5xx"),
        ),
        1..=4 => (200, 2, "ok", format!("{route}:429,{route}:ok")),
        _ => (200, 1, "ok", format!("{route}:ok")),
    };
    RequestLogRow {
        request_id: format!("req-{i}"),
        at_ms,
        endpoint: "chat".into(),
        requested_model: "auto".into(),
        route_id: (status == 200).then(|| route.clone()),
        provider: (status == 200).then_some(provider),
        attempts,
        status,
        outcome: outcome.into(),
        error_class: (status != 200).then(|| "upstream".to_string()),
        latency_ms: 400 + (i % 700) as u64,
        ttft_ms: Some(150),
        tokens_in: Some(300 + (i % 500) as u64),
        tokens_out: Some(120 + (i % 300) as u64),
        stream: i.is_multiple_of(2),
        trail,
    }
}

/// What one page load takes: the median of several, after a warm-up.
async fn time_page(gateway: &TestGateway, path: &str) -> Duration {
    let http = client();
    let _ = http
        .get(gateway.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await;
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let response = http.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.unwrap();
        times.push(started.elapsed());
        assert!(body.ends_with("</html>\n"), "{path} rendered whole");
    }
    times.sort();
    times[times.len() / 2]
}

/// The budget is 100 ms a page in the product's (release) build; a debug build runs SQLite and the
/// rendering unoptimised, several times slower, so it gets five times that.
#[tokio::test]
async fn pages_load_within_budget_with_200_routes_and_a_day_of_request_log() {
    const REQUESTS_PER_DAY: usize = 100_000;
    const PROVIDERS: usize = 10;
    let sim = Simulator::start().await;
    let now = now_ms();
    // Each provider's day began a minute after this time yesterday, so every reservation of the
    // last 24 hours counts in its key's day window: the most the status page ever has to sum.
    let minute = (now % 86_400_000 / 60_000 + 1) % 1440;
    let day_reset = format!("{:02}:{:02} UTC", minute / 60, minute % 60);
    let mut config = GatewayConfig::new().set("auth.admin_token", ADMIN);
    let mut routes = Vec::new();
    for p in 0..PROVIDERS {
        let provider = format!("p{p}");
        config = config.toml(&format!(
            "[providers.{provider}]\nbase_url = \"{}\"\napi_keys = [\"sk-sim-{provider}-key\"]\n\
             day_reset = \"{day_reset}\"\nlimits = {{ rpm = 30, rpd = 14400, tpm = 60000, tpd = 1000000 }}",
            sim.base_url()
        ));
        for m in 0..200 / PROVIDERS {
            let model = format!("model-{m}");
            config = config.route_with(
                &provider,
                &model,
                (p * 20 + m + 1) as i64,
                r#"context_window = 131072
tags = ["tools", "json"]"#,
            );
            routes.push(format!("{provider}/{model}"));
        }
    }
    let gateway = config.start().await;
    let store = Store::open(&gateway.db_path, Duration::from_secs(5))
        .await
        .unwrap();
    let started = Instant::now();
    let step = 86_400_000 / REQUESTS_PER_DAY as i64;
    let rows: Vec<RequestLogRow> = (0..REQUESTS_PER_DAY)
        .map(|i| log_row(i, now - 86_400_000 + i as i64 * step, &routes))
        .collect();
    for batch in rows.chunks(2_000) {
        store.insert_request_logs(batch).await.unwrap();
    }
    let logged = started.elapsed();
    // The quota ledger holds the same day: a settled row for every fifth request (2,000 per key,
    // what a free tier's daily limit allows), four at a time to fill it faster.
    let keys: Vec<String> = (0..PROVIDERS)
        .map(|p| freerouter::config::Secret::new(format!("sk-sim-p{p}-key")).fingerprint())
        .collect();
    let reservations = rows.iter().enumerate().step_by(5).map(|(i, row)| {
        let p = (i / 5) % PROVIDERS;
        let (store, provider, key_id, route_id) = (
            store.clone(),
            format!("p{p}"),
            keys[p].clone(),
            routes[(i / 5) % routes.len()].clone(),
        );
        let at_ms = row.at_ms;
        async move {
            // One settled ledger row per request, as a day of leases of one would leave.
            store
                .record_unreserved(UnreservedUse {
                    provider,
                    key_id,
                    route_id,
                    holder: "filled-by-the-test".into(),
                    seq: i as i64,
                    at_ms,
                    requests: 1,
                    tokens: 400,
                })
                .await
                .unwrap()
        }
    });
    let reserved = futures::stream::iter(reservations)
        .buffer_unordered(4)
        .count()
        .await;
    eprintln!(
        "filled {} request log rows in {logged:?} and {reserved} ledger rows in {:?}",
        rows.len(),
        started.elapsed() - logged
    );

    let budget = Duration::from_millis(if cfg!(debug_assertions) { 500 } else { 100 });
    let mut report = Vec::new();
    for path in ["/", "/models", "/status", "/chat"] {
        let took = time_page(&gateway, path).await;
        report.push(format!("{path} {:.1} ms", took.as_secs_f64() * 1000.0));
        assert!(took < budget, "{path} took {took:?} (budget {budget:?})");
    }
    eprintln!(
        "page loads with 200 routes and {REQUESTS_PER_DAY} requests in the last day ({} build): {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        report.join(", ")
    );
}

#[tokio::test]
async fn the_status_page_shows_a_routes_own_window_left_and_when_its_capacity_returns() {
    let sim = Simulator::start().await;
    sim.model("m1");
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        .route_with("lab", "m1", 1, "limits = { rpd = 5 }")
        .start()
        .await;
    assert_eq!(gateway.chat(&ask("auto", "hi")).await.status(), 200);
    let (status, html) = get_html(&gateway, "/status", "").await;
    assert_eq!(status, 200);
    let section = html
        .split("<h2>Quota per route</h2>")
        .nth(1)
        .expect("a section for the route's own limits");
    assert!(section.contains("lab/m1"), "{section}");
    assert!(section.contains("1 / 5 · 4 left"), "{section}");
    assert!(section.contains("back to 5 at "), "{section}");
}

#[tokio::test]
async fn the_status_page_dates_a_monthly_windows_return_on_the_first_of_next_month() {
    let sim = Simulator::start().await;
    sim.model("m1");
    let gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.lab]\nbase_url = \"{}\"\napi_keys = [\"sk-lab\"]\nlimits = {{ rpmonth = 3 }}",
            sim.base_url()
        ))
        .route("lab", "m1", 1)
        .start()
        .await;
    assert_eq!(gateway.chat(&ask("auto", "hi")).await.status(), 200);
    let now = now_ms();
    let (status, html) = get_html(&gateway, "/status", "").await;
    assert_eq!(status, 200);
    let section = html
        .split("<h2>Quota per route</h2>")
        .nth(1)
        .expect("a section for the provider's monthly window");
    let first = freerouter::quota::window::next_month_start(now);
    let expected = if first - now > 86_400_000 {
        format!(
            "back to 3 on {} at 00:00:00 UTC",
            freerouter::quota::window::utc_date(first)
        )
    } else {
        "back to 3 at 00:00:00 UTC".to_string()
    };
    assert!(section.contains(&expected), "{expected} in {section}");
}
