//! Web pages that try to use a gateway on the owner's loopback or LAN through the visitor's
//! browser: a form or a "simple" fetch posting to the API (415), a page of another site calling
//! it (403), a DNS-rebound name reaching it (421, on the API and the console). The console's own
//! pages keep working, and a protected console shows nothing before sign-in.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::raw_http::{self, RawResponse};
use freerouter_tests::simulator::Simulator;
use serde_json::Value;

const ADMIN: &str = "admin-browser-3b";

async fn gateway(settings: &[(&str, &str)]) -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model("m");
    let mut config = GatewayConfig::new()
        .set("auth.admin_token", ADMIN)
        .provider("p", &sim)
        .route("p", "m", 1);
    for (key, value) in settings {
        config = config.set(key, value);
    }
    (sim, config.start().await)
}

fn chat_body() -> String {
    ask("auto", "hi").to_string()
}

async fn code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn a_form_or_text_post_to_the_api_gets_415_and_json_with_a_charset_is_served() {
    let (sim, gateway) = gateway(&[]).await;
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = gateway
            .http
            .post(gateway.url("/v1/chat/completions"))
            .header("content-type", content_type)
            .body(chat_body())
            .send()
            .await
            .unwrap();
        assert_eq!(
            code(response).await,
            (415, "unsupported_media_type".into()),
            "{content_type}"
        );
    }
    let no_type = raw_http::send(
        gateway.gateway.addr,
        &raw_http::post("/v1/chat/completions", "127.0.0.1", "", &chat_body()),
    )
    .await;
    assert_eq!(no_type.status, 415, "a body without a content type");
    let admin_form = gateway
        .http
        .post(gateway.url("/v1/gateway/models/disable"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("route=p%2Fm")
        .send()
        .await
        .unwrap();
    assert_eq!(admin_form.status(), 415, "the admin API too");
    assert_eq!(sim.calls("m"), 0);
    let served = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("content-type", "application/json; charset=utf-8")
        .body(chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let bodiless = gateway
        .http
        .post(gateway.url("/v1/gateway/health/reset"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(bodiless.status(), 200, "a bodiless POST may name no type");
}

#[tokio::test]
async fn a_page_of_another_site_is_refused_with_403_and_the_gateways_own_pages_pass() {
    let (sim, gateway) = gateway(&[]).await;
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let response = gateway
            .http
            .post(gateway.url("/v1/chat/completions"))
            .header("origin", origin)
            .json(&ask("auto", "spend the owner's quota"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            code(response).await,
            (403, "origin_not_allowed".into()),
            "{origin}"
        );
        let read = gateway
            .http
            .get(gateway.url("/v1/models"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 403, "{origin}");
    }
    let console_form = gateway
        .http
        .post(gateway.url("/login"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(console_form.status(), 403);
    assert_eq!(sim.calls("m"), 0);
    // What the console's chat.js sends: its own origin, JSON.
    let own = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("origin", gateway.url.clone())
        .json(&ask("auto", "from the playground"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(
        own.headers().get("access-control-allow-origin").is_none(),
        "same-site needs no CORS"
    );
}

#[tokio::test]
async fn a_listed_origin_gets_cors_headers_and_its_preflight_answered() {
    let (_sim, gateway) = gateway(&[("server.allowed_origins", "http://localhost:3000")]).await;
    let preflight = gateway
        .http
        .request(
            reqwest::Method::OPTIONS,
            gateway.url("/v1/chat/completions"),
        )
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        "http://localhost:3000"
    );
    assert!(header(&preflight, "access-control-allow-headers").contains("content-type"));
    let call = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("origin", "http://localhost:3000")
        .json(&ask("auto", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    assert_eq!(
        header(&call, "access-control-allow-origin"),
        "http://localhost:3000"
    );
    assert!(header(&call, "access-control-expose-headers").contains("x-gateway-route"));
    let other = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("origin", "http://localhost:3001")
        .json(&ask("auto", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
}

async fn raw_get(gateway: &TestGateway, path: &str, host: &str, extra: &str) -> RawResponse {
    raw_http::send(gateway.gateway.addr, &raw_http::get(path, host, extra)).await
}

#[tokio::test]
async fn a_rebound_host_name_gets_421_on_the_api_and_the_console() {
    let (sim, gateway) = gateway(&[("server.allowed_hosts", "homeserver.lan")]).await;
    let port = gateway.gateway.addr.port();
    let rebound = format!("rebind.evil.example:{port}");
    for path in [
        "/v1/models",
        "/",
        "/models",
        "/status",
        "/chat",
        "/login",
        "/assets/chat.js",
    ] {
        let answer = raw_get(&gateway, path, &rebound, "").await;
        assert_eq!(answer.status, 421, "{path}: {answer:?}");
        assert_eq!(answer.error_code(), "misdirected_request", "{path}");
    }
    let chat = raw_http::send(
        gateway.gateway.addr,
        &raw_http::post(
            "/v1/chat/completions",
            &rebound,
            "Content-Type: application/json\r\n",
            &chat_body(),
        ),
    )
    .await;
    assert_eq!(chat.status, 421);
    assert_eq!(sim.calls("m"), 0);
    for known in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("192.168.1.20:{port}"),
        format!("HomeServer.lan:{port}"),
    ] {
        assert_eq!(
            raw_get(&gateway, "/v1/models", &known, "").await.status,
            200,
            "{known}"
        );
        assert_eq!(
            raw_get(&gateway, "/", &known, "").await.status,
            200,
            "{known}"
        );
    }
    for probe in ["/health", "/ready", "/metrics"] {
        assert_eq!(
            raw_get(&gateway, probe, "gateway:8000", "").await.status,
            200,
            "{probe} answers service names (probes, Prometheus)"
        );
    }
}

#[tokio::test]
async fn with_client_keys_a_key_bearing_api_call_passes_any_host_but_the_console_does_not() {
    let (_sim, gateway) = gateway(&[("auth.api_keys", "sk-lan-1")]).await;
    let host = "homeserver.lan:8000";
    let keyed = raw_get(
        &gateway,
        "/v1/models",
        host,
        "Authorization: Bearer sk-lan-1\r\n",
    )
    .await;
    assert_eq!(keyed.status, 200, "{keyed:?}");
    let keyless = raw_get(&gateway, "/v1/models", host, "").await;
    assert_eq!(keyless.status, 401);
    assert_eq!(raw_get(&gateway, "/", host, "").await.status, 421);
    // A rebinding page's own origin is no same-site origin for a foreign name.
    let from_page = raw_get(
        &gateway,
        "/v1/models",
        host,
        "Authorization: Bearer sk-lan-1\r\nOrigin: http://homeserver.lan:8000\r\n",
    )
    .await;
    assert_eq!(from_page.status, 403);
}

#[tokio::test]
async fn a_protected_console_shows_pages_only_after_sign_in() {
    let (_sim, gateway) = gateway(&[("auth.protect_console", "true")]).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for page in ["/", "/models", "/status", "/chat"] {
        let response = browser.get(gateway.url(page)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{page}");
        assert_eq!(header(&response, "location"), "/login", "{page}");
    }
    for open in ["/login", "/assets/console.css"] {
        assert_eq!(
            browser
                .get(gateway.url(open))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{open}"
        );
    }
    let signed_in = browser
        .post(gateway.url("/login"))
        .header("origin", gateway.url.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = header(&signed_in, "set-cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    for page in ["/", "/models", "/status", "/chat"] {
        let response = browser
            .get(gateway.url(page))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{page}");
    }
}
