//! Hiding credentials in what is shown: a provider `base_url` may carry them
//! (`https://user:pass@host/v1`, `…?key=…`), and a configuration error may quote a value.

/// `url` with its user info and every query value replaced by `***`: what pages, the admin API,
/// adminctl and logs show of a base URL. Text that is not a URL comes back unchanged.
pub fn redact_url(url: &str) -> String {
    let (without_fragment, fragment) = match url.split_once('#') {
        Some((rest, _)) => (rest, Some("***")),
        None => (url, None),
    };
    let (before_query, query) = match without_fragment.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (without_fragment, None),
    };
    let mut out = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => before_query.to_string(),
            }
        }
        None => before_query.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() => format!("{name}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// `message` with every occurrence of each secret replaced by `***` (longest first, so a secret
/// that contains another is hidden whole). Secrets shorter than 3 characters are left: hiding
/// every "1" in an error would garble it without protecting anything.
pub(super) fn redact_values<'a>(
    message: &str,
    secrets: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut secrets: Vec<&str> = secrets
        .into_iter()
        .map(str::trim)
        .filter(|s| s.len() >= 3)
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_string();
    for secret in secrets {
        out = out.replace(secret, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_base_url_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_url("https://user:pa%40ss@api.example.com:8443/v1"),
            "https://***@api.example.com:8443/v1"
        );
        assert_eq!(
            redact_url("https://host/v1beta?key=AIzaSecret&alt=sse"),
            "https://host/v1beta?key=***&alt=***"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9000/v1"),
            "http://127.0.0.1:9000/v1"
        );
        assert_eq!(redact_url("http://h/v1#token"), "http://h/v1#***");
        assert_eq!(
            redact_url("http://h/a@b"),
            "http://h/a@b",
            "an @ in the path is no user info"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn secrets_are_hidden_in_a_message_longest_first() {
        assert_eq!(
            redact_values(
                "bad value sk-abc-long near sk-abc",
                ["sk-abc", "sk-abc-long", "1"]
            ),
            "bad value *** near ***"
        );
    }
}
