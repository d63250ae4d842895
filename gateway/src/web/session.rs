//! The console's admin session: a cookie proving the admin token was presented, and the CSRF
//! token every form carries.
//!
//! Nothing is kept in memory: the cookie is `issued.nonce.mac`, where `mac` is an HMAC-SHA256 keyed
//! with the admin token, so replicas sharing the token accept each other's sessions, a restart
//! keeps them, and changing the token ends them all. The raw token never leaves the login form.
//! The CSRF token is a second HMAC over the session value: a page of another site can neither read
//! it nor guess it, and every POST must present it besides the cookie and a same-origin `Origin`.

use crate::http::auth::constant_time_eq;
use crate::state::AppState;
use axum::http::HeaderMap;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use freerouter::time::EpochMs;
use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE_NAME: &str = "freerouter_console";
/// How long a sign-in lasts.
pub const SESSION_MS: EpochMs = 12 * 3_600_000;

/// HMAC-SHA256 (RFC 2104) over sha2, which the workspace already builds.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(token: &str, purpose: &str, value: &str) -> String {
    hex(&hmac_sha256(
        token.as_bytes(),
        format!("freerouter-console|{purpose}|{value}").as_bytes(),
    ))
}

/// A new session value for an admin who just presented `token`.
pub fn issue(token: &str, now: EpochMs) -> String {
    let body = format!("{now}.{}", uuid::Uuid::new_v4().simple());
    let mac = mac(token, "session", &body);
    format!("{body}.{mac}")
}

/// Whether `value` is a session issued with `token` that has not expired.
pub fn verify(token: &str, value: &str, now: EpochMs) -> bool {
    let Some((body, presented)) = value.rsplit_once('.') else {
        return false;
    };
    let Some(issued) = body
        .split_once('.')
        .and_then(|(issued, _)| issued.parse::<EpochMs>().ok())
    else {
        return false;
    };
    // A minute of clock skew between replicas is tolerated; a session from the future is not.
    // Saturating: an issue time near either end of the range must not wrap into "fresh".
    let fresh = issued <= now.saturating_add(60_000) && now.saturating_sub(issued) < SESSION_MS;
    fresh & constant_time_eq(presented, &mac(token, "session", body))
}

/// The CSRF token of a session.
pub fn csrf_token(token: &str, session: &str) -> String {
    mac(token, "csrf", session)
}

/// Who is looking at a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// No admin token is configured: the console only shows.
    ReadOnly,
    /// Not signed in.
    Anonymous,
    /// Signed in; forms carry this CSRF token.
    Admin { csrf: String },
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        matches!(self, Viewer::Admin { .. })
    }

    /// The hidden form field with the CSRF token ("" for a viewer who cannot post).
    pub fn csrf_field(&self) -> String {
        match self {
            Viewer::Admin { csrf } => {
                format!(r#"<input type="hidden" name="csrf" value="{csrf}">"#)
            }
            _ => String::new(),
        }
    }
}

/// The session cookie a request carries, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
}

/// Who the request comes from.
pub fn viewer(state: &AppState, headers: &HeaderMap, now: EpochMs) -> Viewer {
    let Some(token) = &state.settings.auth.admin_token else {
        return Viewer::ReadOnly;
    };
    match session_cookie(headers) {
        Some(session) if verify(token.expose(), session, now) => Viewer::Admin {
            csrf: csrf_token(token.expose(), session),
        },
        _ => Viewer::Anonymous,
    }
}

/// Whether a browser says the request comes from a page of this same site. Browsers send `Origin`
/// on every POST; a client that sends none is not a browser led by another site, and still needs
/// the cookie and the CSRF token.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Why a POST was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No admin token is configured: nothing can be changed over HTTP.
    ReadOnly,
    /// Not signed in, or the session expired.
    NotSignedIn,
    /// The form's CSRF token or the request's origin is wrong.
    Forged,
}

/// Lets a form POST through only from a signed-in admin, from this site, with the form's CSRF token.
pub fn authorize_post(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &str,
    now: EpochMs,
) -> Result<(), Refusal> {
    if !same_origin(headers) {
        return Err(Refusal::Forged);
    }
    match viewer(state, headers, now) {
        Viewer::ReadOnly => Err(Refusal::ReadOnly),
        Viewer::Anonymous => Err(Refusal::NotSignedIn),
        Viewer::Admin { csrf: expected } if constant_time_eq(csrf, &expected) => Ok(()),
        Viewer::Admin { .. } => Err(Refusal::Forged),
    }
}

/// Whether the browser reached us over TLS (a reverse proxy in front says so).
pub fn over_tls(headers: &HeaderMap) -> bool {
    let says = |name: &str, needle: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
    };
    says("x-forwarded-proto", "https") || says("forwarded", "proto=https")
}

/// The `Set-Cookie` value for a new session. `Secure` is set when the browser came over TLS: a
/// browser drops a `Secure` cookie set over plain http (except on localhost), and a home server is
/// often reached as `http://192.168.x.y:8000`, where the flag would make signing in impossible.
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        SESSION_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that signs out.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_session_holds_for_its_token_until_it_expires() {
        let now = 1_800_000_000_000;
        let session = issue("admin-1", now);
        assert!(
            !session.contains("admin-1"),
            "the cookie never holds the token"
        );
        assert!(verify("admin-1", &session, now + 1_000));
        assert!(
            !verify("admin-2", &session, now),
            "another token, no session"
        );
        assert!(!verify("admin-1", &session, now + SESSION_MS), "expired");
        assert!(
            !verify("admin-1", &session, now - 120_000),
            "from the future"
        );
        // Another last hex digit (one in sixteen sessions already ends in 0).
        let last = if session.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &session[..session.len() - 1]);
        assert!(!verify("admin-1", &forged, now));
        let later = session.replacen(&now.to_string(), &(now + 5).to_string(), 1);
        assert!(!verify("admin-1", &later, now), "the issue time is signed");
        assert!(!verify("admin-1", "garbage", now));
    }

    #[test]
    fn a_signed_cookie_with_an_extreme_issue_time_is_refused_not_wrapped() {
        let now = 1_800_000_000_000;
        for issued in [EpochMs::MIN, EpochMs::MIN + 1, EpochMs::MAX] {
            let body = format!("{issued}.nonce");
            let cookie = format!("{body}.{}", mac("admin-1", "session", &body));
            assert!(!verify("admin-1", &cookie, now), "issued at {issued}");
        }
        let old = format!("{}.n", now - SESSION_MS);
        let cookie = format!("{old}.{}", mac("admin-1", "session", &old));
        assert!(
            !verify("admin-1", &cookie, EpochMs::MAX),
            "a clock at the end of time"
        );
    }

    #[test]
    fn csrf_tokens_differ_between_sessions() {
        let (a, b) = (issue("t", 1), issue("t", 1));
        assert_ne!(csrf_token("t", &a), csrf_token("t", &b));
        assert_eq!(csrf_token("t", &a), csrf_token("t", &a));
    }

    #[test]
    fn only_a_same_site_origin_passes() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, "127.0.0.1:8000".parse().unwrap());
        assert!(same_origin(&headers), "no Origin: not a browser");
        headers.insert(ORIGIN, "http://127.0.0.1:8000".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&headers));
        headers.insert(ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&headers));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_tls() {
        let cookie = set_cookie("v", true);
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert!(!set_cookie("v", false).contains("Secure"));
        let mut headers = HeaderMap::new();
        assert!(!over_tls(&headers));
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(over_tls(&headers));
    }
}
