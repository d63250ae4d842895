//! HTML building blocks: escaping, the page layout, and how times, durations and numbers read.
//! Every value that did not come from this file's own literals goes through [`Esc`] or [`escape`].

use super::session::{Refusal, Viewer};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use freerouter::time::EpochMs;
use std::fmt::{self, Display, Write};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let _ = write!(out, "{}", Esc(text));
    out
}

/// Text that is escaped as it is written: `format!("<td>{}</td>", Esc(&route.route_id))`.
pub struct Esc<'a>(pub &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// Percent-encodes a query value (route ids hold `/` and `:`).
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The four pages, for the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Models,
    Status,
    Chat,
    Login,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/", "Overview"),
    (Nav::Models, "/models", "Models"),
    (Nav::Status, "/status", "Status"),
    (Nav::Chat, "/chat", "Chat"),
];

/// A whole page: head, navigation (with the sign-in state), and `body`.
pub fn page(title: &str, nav: Nav, viewer: &Viewer, body: &str) -> Response {
    page_with_status(StatusCode::OK, title, nav, viewer, body)
}

pub fn page_with_status(
    status: StatusCode,
    title: &str,
    nav: Nav,
    viewer: &Viewer,
    body: &str,
) -> Response {
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · FreeRouter</title>
<link rel="stylesheet" href="/assets/console.css">
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
</head><body>
<header class="top"><a class="brand" href="/">FreeRouter</a><nav>"#,
        Esc(title)
    );
    for (item, href, label) in NAV {
        let current = if *item == nav {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(html, r#"<a href="{href}"{current}>{label}</a>"#);
    }
    html.push_str(r#"</nav><div class="who">"#);
    match viewer {
        Viewer::Admin { .. } => {
            let _ = write!(
                html,
                r#"<span class="badge ok">admin</span><form method="post" action="/logout" class="inline">{}<button type="submit" class="link">Sign out</button></form>"#,
                viewer.csrf_field()
            );
        }
        Viewer::Anonymous => html.push_str(r#"<a href="/login">Sign in</a>"#),
        Viewer::ReadOnly => html.push_str(r#"<span class="badge muted">read-only</span>"#),
    }
    let _ = write!(
        html,
        "</div></header>\n<main>\n<h1>{}</h1>\n{body}\n</main>\n</body></html>\n",
        Esc(title)
    );
    let mut response = (status, html).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A page saying why a change was refused (403).
pub fn refused(refusal: Refusal, viewer: &Viewer) -> Response {
    let message = match refusal {
        Refusal::ReadOnly => {
            "This console is read-only: no admin token is configured. Set FREEROUTER__AUTH__ADMIN_TOKEN \
             to allow changes here, or use adminctl on the database file."
        }
        Refusal::NotSignedIn => {
            "Changes need the admin token: sign in first (or your session has expired)."
        }
        Refusal::Forged => {
            "This form did not come from this console (its CSRF token or origin is wrong). Reload the \
             page and try again."
        }
    };
    let body = format!(
        r#"<p class="notice error">{}</p><p><a href="/login">Sign in</a> · <a href="/models">Models</a></p>"#,
        Esc(message)
    );
    page_with_status(StatusCode::FORBIDDEN, "Refused", Nav::Login, viewer, &body)
}

/// A page for a store that does not answer (503), without internal detail.
pub fn unavailable(viewer: &Viewer) -> Response {
    page_with_status(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        Nav::Overview,
        viewer,
        r#"<p class="notice error">The database could not be reached. Try again in a moment.</p>"#,
    )
}

/// `2026-11-28 17:30:05 UTC`
pub fn utc(ms: EpochMs) -> String {
    let (date, secs) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000) / 1000);
    let (y, m, d) = civil_from_days(date);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `17:30` (UTC), for chart axes.
pub fn utc_hm(ms: EpochMs) -> String {
    let secs = ms.rem_euclid(86_400_000) / 1000;
    format!("{:02}:{:02}", secs / 3600, secs / 60 % 60)
}

/// Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A span of time, coarsely: `42 s`, `3 min`, `2 h 5 min`.
pub fn duration(ms: EpochMs) -> String {
    let secs = (ms.max(0) + 999) / 1000;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        _ if secs % 3600 / 60 == 0 => format!("{} h", secs / 3600),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// How long ago `then` was: `3 min ago`.
pub fn ago(then: EpochMs, now: EpochMs) -> String {
    if now - then < 1000 {
        "just now".into()
    } else {
        format!("{} ago", duration(now - then))
    }
}

/// `12,345`
pub fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `97.5%`, or `—` without requests.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "—".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Text cut to `max` characters (error messages can be long).
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain/route:free"), "plain/route:free");
    }

    #[test]
    fn times_numbers_and_query_values_read_well() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_798_761_600_000 + 61_000), "2027-01-01 00:01:01 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_hm(1_798_761_600_000 + 3_660_000), "01:01");
        assert_eq!(duration(41_200), "42 s");
        assert_eq!(duration(3 * 60_000), "3 min");
        assert_eq!(duration(2 * 3_600_000 + 5 * 60_000), "2 h 5 min");
        assert_eq!(number(1_234_567), "1,234,567");
        assert_eq!(number(999), "999");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(0, 0), "—");
        assert_eq!(url_encode("lab/new:free"), "lab%2Fnew%3Afree");
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
