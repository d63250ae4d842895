//! What a web page may make a browser send to the gateway. A page of another site must not be
//! able to use a gateway on the owner's loopback or LAN:
//! - a `Host` the gateway is not known by is DNS rebinding (a name the attacker controls, resolved
//!   to this machine): 421, on the API and the console. Known: localhost names, IP literals (a
//!   rebinding needs a name, so an address in `Host` means the browser was pointed at us), and
//!   `server.allowed_hosts`. With client keys configured, `/v1/*` skips this check: every request
//!   there must present a key, which a rebinding page does not have.
//! - an `Origin` that is neither this site itself nor in `server.allowed_origins`: 403 (listed
//!   origins also get CORS headers and preflight answers);
//! - a `/v1/*` POST whose body is not `application/json` (what an HTML form or a "simple" fetch
//!   sends without a preflight): 415.
//!
//! `/health`, `/ready` and `/metrics` skip the `Host` check: probes and scrapers use service names.

use crate::http::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD,
    CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use freerouter::config::Settings;
use freerouter::metrics as m;
use std::net::{IpAddr, Ipv6Addr};

/// The names and origins the gateway answers to, from the settings.
#[derive(Clone, Debug)]
pub struct Perimeter {
    any_host: bool,
    hosts: Vec<String>,
    any_origin: bool,
    origins: Vec<String>,
    /// `/v1/*` needs a client key anyway: its `Host` is not checked.
    keys_configured: bool,
}

/// How a request's `Origin` stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OriginVerdict {
    /// A page of the gateway's own (the console's forms, `chat.js`).
    SameSite,
    /// Listed in `server.allowed_origins`: answered with CORS headers.
    Listed,
    Refused,
}

/// `Host` without its port, lower case, without a trailing dot.
fn host_name(host: &str) -> String {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(inside, _)| inside)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn normalized_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl Perimeter {
    pub fn new(settings: &Settings) -> Self {
        let server = &settings.server;
        Self {
            any_host: server.allowed_hosts.iter().any(|h| h == "*"),
            hosts: server.allowed_hosts.iter().map(|h| host_name(h)).collect(),
            any_origin: server.allowed_origins.iter().any(|o| o == "*"),
            origins: server
                .allowed_origins
                .iter()
                .map(|o| normalized_origin(o))
                .collect(),
            keys_configured: !settings.auth.api_keys.is_empty(),
        }
    }

    /// Whether the gateway is known by `host` (a `Host` header's value).
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        self.any_host
            || name.parse::<IpAddr>().is_ok()
            || name.parse::<Ipv6Addr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.hosts.contains(&name)
    }

    fn origin(&self, origin: &str, host: Option<&str>, host_ok: bool) -> OriginVerdict {
        let normalized = normalized_origin(origin);
        let same_site = host_ok
            && host.is_some_and(|host| {
                normalized
                    .split_once("://")
                    .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host.trim()))
            });
        if same_site {
            OriginVerdict::SameSite
        } else if self.any_origin || self.origins.contains(&normalized) {
            OriginVerdict::Listed
        } else {
            OriginVerdict::Refused
        }
    }
}

/// Whether a POST carries a body that is not declared JSON. A bodiless POST without a content
/// type passes (`curl -X POST`): a browser sends one only from `fetch`, which carries `Origin`.
fn wrong_content_type(headers: &HeaderMap) -> bool {
    let declared = headers.get(CONTENT_TYPE).map(|v| {
        v.to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/json")
    });
    match declared {
        Some(json) => !json,
        // No type: wrong only when a body comes.
        None => {
            headers.contains_key(TRANSFER_ENCODING)
                || headers
                    .get(CONTENT_LENGTH)
                    .is_some_and(|v| v.as_bytes() != b"0")
        }
    }
}

fn refuse(reason: &'static str, error: ApiError) -> Response {
    metrics::counter!(m::BROWSER_REFUSALS_TOTAL, "reason" => reason).increment(1);
    error.into_response()
}

const EXPOSED: &str = "x-gateway-provider, x-gateway-route, x-gateway-model, x-gateway-attempts, \
                       x-gateway-trail, x-request-id, retry-after";

fn allow_origin(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    headers.append(VARY, HeaderValue::from_static("origin"));
}

/// The layer over every route.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let perimeter = &state.perimeter;
    let path = request.uri().path();
    let api = path.starts_with("/v1/");
    let operations = matches!(path, "/health" | "/ready" | "/metrics");
    let headers = request.headers();
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let host_ok = host.is_none_or(|h| perimeter.host_allowed(h));
    // Probes use service names; a keyed API needs a key, which a rebinding page does not have.
    let host_exempt = operations || (api && perimeter.keys_configured);
    if !host_exempt && !host_ok {
        let name = host.map(host_name).unwrap_or_default();
        return refuse(
            "host",
            ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected_request",
                format!(
                    "this gateway does not answer to the name {name:?} (a foreign name can be DNS rebinding): \
                     if it is yours, add it to server.allowed_hosts (FREEROUTER__SERVER__ALLOWED_HOSTS)"
                ),
            ),
        );
    }
    let origin = headers.get(ORIGIN).cloned();
    let verdict = origin
        .as_ref()
        .map(|origin| perimeter.origin(origin.to_str().unwrap_or("null"), host, host_ok));
    if verdict == Some(OriginVerdict::Refused) {
        let shown = origin
            .as_ref()
            .and_then(|o| o.to_str().ok())
            .unwrap_or("?")
            .chars()
            .take(200)
            .collect::<String>();
        return refuse(
            "origin",
            ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!(
                    "requests from web pages of {shown:?} are refused: if that site should call this gateway, \
                     add it to server.allowed_origins (FREEROUTER__SERVER__ALLOWED_ORIGINS)"
                ),
            ),
        );
    }
    let listed = verdict == Some(OriginVerdict::Listed);
    if listed
        && request.method() == Method::OPTIONS
        && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        && let Some(origin) = &origin
    {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let out = response.headers_mut();
        allow_origin(out, origin);
        out.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, OPTIONS"),
        );
        out.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "authorization, content-type, x-api-key, x-freerouter-strict, x-freerouter-priority, x-freerouter-exclude, x-session-id",
            ),
        );
        out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        return response;
    }
    if api
        && matches!(
            *request.method(),
            Method::POST | Method::PUT | Method::PATCH
        )
        && wrong_content_type(headers)
    {
        return refuse(
            "content_type",
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
        );
    }
    let mut response = next.run(request).await;
    if listed && let Some(origin) = &origin {
        allow_origin(response.headers_mut(), origin);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use freerouter::config::ConfigSource;

    fn perimeter(vars: &[(&str, &str)]) -> Perimeter {
        let mut source = ConfigSource::default();
        for (name, value) in vars {
            source = source.with_var(name, value);
        }
        Perimeter::new(&Settings::load(&source).unwrap())
    }

    #[test]
    fn local_names_and_addresses_are_known_and_other_names_only_when_listed() {
        let p = perimeter(&[("FREEROUTER__SERVER__ALLOWED_HOSTS", "HomeServer.lan")]);
        for known in [
            "localhost:8000",
            "LOCALHOST",
            "app.localhost:8000",
            "127.0.0.1:8000",
            "192.168.1.20:8000",
            "[::1]:8000",
            "homeserver.lan:8000",
            "homeserver.lan.",
        ] {
            assert!(p.host_allowed(known), "{known}");
        }
        for foreign in [
            "evil.example",
            "evil.example:8000",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert!(!p.host_allowed(foreign), "{foreign}");
        }
        assert!(
            perimeter(&[("FREEROUTER__SERVER__ALLOWED_HOSTS", "*")]).host_allowed("any.example")
        );
    }

    #[test]
    fn only_the_site_itself_and_listed_origins_pass() {
        let p = perimeter(&[(
            "FREEROUTER__SERVER__ALLOWED_ORIGINS",
            "http://localhost:3000/",
        )]);
        let host = Some("127.0.0.1:8000");
        assert_eq!(
            p.origin("http://127.0.0.1:8000", host, true),
            OriginVerdict::SameSite
        );
        assert_eq!(
            p.origin("http://localhost:3000", host, true),
            OriginVerdict::Listed
        );
        assert_eq!(
            p.origin("https://evil.example", host, true),
            OriginVerdict::Refused
        );
        assert_eq!(p.origin("null", host, true), OriginVerdict::Refused);
        assert_eq!(
            p.origin("http://evil.example:8000", Some("evil.example:8000"), false),
            OriginVerdict::Refused,
            "a rebound name is not this site"
        );
    }

    #[test]
    fn only_a_json_body_passes_and_a_bodiless_post_may_say_nothing() {
        let mut headers = HeaderMap::new();
        assert!(!wrong_content_type(&headers));
        headers.insert(CONTENT_LENGTH, "0".parse().unwrap());
        assert!(!wrong_content_type(&headers));
        headers.insert(CONTENT_LENGTH, "12".parse().unwrap());
        assert!(wrong_content_type(&headers));
        headers.insert(
            CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(!wrong_content_type(&headers));
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            headers.insert(CONTENT_TYPE, other.parse().unwrap());
            assert!(wrong_content_type(&headers), "{other}");
        }
    }
}
