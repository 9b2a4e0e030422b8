//! Where an error page's **Go back** leads: the portal page the request came from (its
//! `Referer`, when that names this server), as a plain link. A `javascript:history.back()` link
//! does nothing under our own Content-Security-Policy, and a link to another site would let a
//! crafted request send the operator off-site, so neither is used.
//!
//! The error page is rendered where the request is out of reach (`IntoResponse` of
//! [`crate::web_error::WebError`]), so a middleware keeps the address for the request's task.

use axum::http::{header, HeaderMap, Uri};

tokio::task_local! {
    static BACK: Option<String>;
}

/// Middleware: keeps the same-origin page the request came from while the request is handled.
pub async fn remember(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let back = same_origin_referer(req.headers(), req.uri());
    BACK.scope(back, next.run(req)).await
}

/// The path (and query) of the page the current request came from, when it is one of ours.
pub fn current() -> Option<String> {
    BACK.try_with(Clone::clone).ok().flatten()
}

/// The Referer's path and query when its host is the one the request was sent to.
fn same_origin_referer(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))?;
    let rest = referer
        .strip_prefix("https://")
        .or_else(|| referer.strip_prefix("http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if !authority.eq_ignore_ascii_case(host) {
        return None;
    }
    // Without the fragment.
    let path = path.split('#').next().unwrap_or("/");
    is_local_path(path).then(|| path.to_owned())
}

/// Whether `path` leads to a page of this server whatever the browser makes of it: it starts
/// with one `/`, and holds no `\`, which browsers read as `/` (so `/\evil.example` would be
/// `//evil.example`, another host), and no control character, which could split a header or
/// hide where it leads.
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_paths_of_this_server_are_local() {
        for good in ["/", "/users?q=doe", "/issue/x"] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "users",
            "",
            "/users\r\nSet-Cookie: x",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    fn back(referer: &str, host: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(header::REFERER, HeaderValue::from_str(referer).unwrap());
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        same_origin_referer(&h, &Uri::from_static("/issue/x/policy"))
    }

    #[test]
    fn only_a_page_of_this_server_is_a_way_back() {
        let host = "cms.example:8443";
        assert_eq!(
            back("https://cms.example:8443/issue/j1", host).as_deref(),
            Some("/issue/j1")
        );
        assert_eq!(
            back("http://cms.example:8443/users?q=jane#top", host).as_deref(),
            Some("/users?q=jane")
        );
        assert_eq!(back("https://cms.example:8443", host).as_deref(), Some("/"));
        assert_eq!(back("https://evil.example/issue/j1", host), None);
        assert_eq!(back("https://cms.example:8443.evil.example/x", host), None);
        assert_eq!(back("https://cms.example:8443//evil.example/x", host), None);
        assert_eq!(back("javascript:alert(1)", host), None);
    }
}
