//! One connection to the directory: connect (TLS from the start, or StartTLS), bind, and read a
//! whole subtree page by page with the Simple Paged Results control (RFC 2696). A search is
//! complete or it fails: a result code other than success, a referral, or more entries than the
//! configured limit end it with an error, never with the entries read so far.

use crate::config::Settings;
use crate::entry::RawEntry;
use crate::error::{describe_result, DirectoryError};
use ldap3::controls::{PagedResults, RawControl};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchResult};
use std::time::Duration;
use zeroize::Zeroizing;

/// The OID of the Simple Paged Results control.
const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";

/// What was being done when an error came: it decides the sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Connect,
    Bind,
    Search,
}

impl Step {
    fn what(self) -> &'static str {
        match self {
            Self::Connect => "connection",
            Self::Bind => "sign-in (bind)",
            Self::Search => "search",
        }
    }
}

pub(crate) struct Session<'a> {
    settings: &'a Settings,
    ldap: Ldap,
    driver: tokio::task::JoinHandle<()>,
    timeout: Duration,
}

/// How many entries one reading may still take (the `max_entries` guard, over every search).
pub(crate) struct Budget {
    pub limit: usize,
    pub used: usize,
}

impl<'a> Session<'a> {
    /// Connects and binds (anonymously without a bind DN).
    pub async fn open(
        settings: &'a Settings,
        tls: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
        password: Option<Zeroizing<String>>,
    ) -> Result<Session<'a>, DirectoryError> {
        let timeout = Duration::from_secs(settings.config.timeout_secs);
        let conn_settings = LdapConnSettings::new()
            .set_conn_timeout(timeout)
            .set_starttls(settings.config.start_tls)
            .set_config(tls);
        let (conn, ldap) = LdapConnAsync::from_url_with_settings(conn_settings, &settings.url)
            .await
            .map_err(|e| explain(settings, Step::Connect, e))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "the directory connection ended");
            }
        });
        let mut session = Session {
            settings,
            ldap,
            driver,
            timeout,
        };
        if let (Some(dn), Some(password)) = (&settings.config.bind_dn, password) {
            let result = session
                .ldap
                .with_timeout(timeout)
                .simple_bind(dn, &password)
                .await
                .map_err(|e| explain(settings, Step::Bind, e));
            match result {
                Ok(r) if r.rc == 0 => {}
                Ok(r) => {
                    session.close().await;
                    return Err(DirectoryError::BindRefused {
                        bind_dn: dn.clone(),
                        detail: describe_result(r.rc, &r.text),
                    });
                }
                Err(e) => {
                    session.close().await;
                    return Err(e);
                }
            }
        }
        Ok(session)
    }

    /// Every entry under `base` (subtree) that matches `filter`, with `attrs`, page by page.
    pub async fn search_all(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[String],
        budget: &mut Budget,
    ) -> Result<Vec<RawEntry>, DirectoryError> {
        let page_size = i32::try_from(self.settings.config.page_size).unwrap_or(i32::MAX);
        let mut entries = Vec::new();
        let mut cookie = Vec::new();
        let mut pages = 0u64;
        loop {
            let control: RawControl = PagedResults {
                size: page_size,
                cookie: std::mem::take(&mut cookie),
            }
            .into();
            let SearchResult(found, result) = self
                .ldap
                .with_controls(vec![control])
                .with_timeout(self.timeout)
                .search(base, Scope::Subtree, filter, attrs)
                .await
                .map_err(|e| explain(self.settings, Step::Search, e))?;
            pages += 1;
            let refs: Vec<&String> = result.refs.iter().collect();
            if result.rc == 10 || (!refs.is_empty() && !self.settings.config.ignore_referrals) {
                return Err(DirectoryError::Referral {
                    base: base.to_owned(),
                    refs: if refs.is_empty() {
                        "another server".into()
                    } else {
                        refs.iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                });
            }
            match result.rc {
                0 => {}
                4 => {
                    return Err(DirectoryError::ServerSizeLimit {
                        base: base.to_owned(),
                        detail: describe_result(result.rc, &result.text),
                    })
                }
                32 => {
                    return Err(DirectoryError::NoSuchBase {
                        base: base.to_owned(),
                    })
                }
                rc => {
                    return Err(DirectoryError::Search {
                        base: base.to_owned(),
                        detail: describe_result(rc, &result.text),
                    })
                }
            }
            for found in found {
                if found.is_ref() || found.is_intermediate() {
                    continue;
                }
                budget.used += 1;
                if budget.used > budget.limit {
                    return Err(DirectoryError::TooManyEntries {
                        base: base.to_owned(),
                        limit: budget.limit,
                    });
                }
                entries.push(RawEntry::decode(found.0)?);
            }
            match paged_cookie(&result.ctrls) {
                Ok(Some(next)) if !next.is_empty() => cookie = next,
                // The last page (an empty cookie), or a server that does not page and gave
                // everything at once with success.
                Ok(_) => break,
                Err(detail) => {
                    return Err(DirectoryError::Malformed {
                        at: String::new(),
                        detail: format!("its paged results control: {detail}"),
                    })
                }
            }
        }
        tracing::debug!(
            base,
            entries = entries.len(),
            pages,
            "directory search read"
        );
        Ok(entries)
    }

    /// Unbinds and ends the connection.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.ldap.unbind()).await;
        self.driver.abort();
    }
}

/// The cookie of the paged results control among a search result's controls (None when the
/// server sent none). Read without the library's parser, which panics on a malformed value.
fn paged_cookie(ctrls: &[ldap3::controls::Control]) -> Result<Option<Vec<u8>>, String> {
    use ldap3::asn1::parse_tag;
    for ldap3::controls::Control(_, raw) in ctrls {
        if raw.ctype != PAGED_RESULTS {
            continue;
        }
        let value = raw.val.as_deref().ok_or("it has no value")?;
        let (_, tag) = parse_tag(value).map_err(|_| "its value is not BER")?;
        let mut parts = tag
            .expect_constructed()
            .ok_or("its value is not a sequence")?
            .into_iter();
        let _estimate = parts.next();
        let cookie = parts
            .next()
            .and_then(|t| t.expect_primitive())
            .ok_or("it has no cookie")?;
        return Ok(Some(cookie));
    }
    Ok(None)
}

/// An error of the LDAP library as a sentence; the library's own words go to the log.
fn explain(settings: &Settings, step: Step, e: LdapError) -> DirectoryError {
    tracing::debug!(error = %e, step = step.what(), "directory error");
    let url = settings.server();
    let host = settings.url.host_str().unwrap_or_default().to_owned();
    let ca_file = settings.config.ca_file.as_deref();
    let closed = || DirectoryError::Closed { what: step.what() };
    match e {
        LdapError::Timeout { .. } => DirectoryError::Timeout {
            url,
            what: step.what(),
            secs: settings.config.timeout_secs,
        },
        LdapError::Rustls { source } => crate::tls::explain(&source, &url, &host, ca_file),
        LdapError::DNSName { .. } => DirectoryError::config(format!(
            "the host {host:?} of url cannot be checked against a certificate"
        )),
        LdapError::Io { source } => {
            if let Some(tls) = crate::tls::rustls_error(&source) {
                return crate::tls::explain(tls, &url, &host, ca_file);
            }
            use std::io::ErrorKind as K;
            match (step, source.kind()) {
                (_, K::TimedOut) => DirectoryError::Timeout {
                    url,
                    what: step.what(),
                    secs: settings.config.timeout_secs,
                },
                (Step::Connect, K::ConnectionRefused) => DirectoryError::Unreachable {
                    url,
                    detail: "the connection was refused (is the server running on that port?)"
                        .into(),
                },
                (Step::Connect, K::UnexpectedEof | K::ConnectionReset) if settings.uses_tls() => {
                    DirectoryError::Tls {
                        url,
                        detail: "the server closed the connection during the TLS handshake \
                                 (does it speak TLS there?)"
                            .into(),
                    }
                }
                (Step::Connect, _) => DirectoryError::Unreachable {
                    url,
                    detail: source.to_string(),
                },
                _ => closed(),
            }
        }
        LdapError::LdapResult { result } => match step {
            Step::Connect => DirectoryError::StartTls {
                url,
                detail: describe_result(result.rc, &result.text),
            },
            Step::Bind => DirectoryError::BindRefused {
                bind_dn: settings.config.bind_dn.clone().unwrap_or_default(),
                detail: describe_result(result.rc, &result.text),
            },
            Step::Search => DirectoryError::Search {
                base: settings.config.base_dn.clone(),
                detail: describe_result(result.rc, &result.text),
            },
        },
        LdapError::FilterParsing => DirectoryError::config("a search filter is not valid"),
        LdapError::EndOfStream | LdapError::ResultRecv { .. } | LdapError::OpSend { .. } => {
            closed()
        }
        other => match step {
            Step::Connect => DirectoryError::Unreachable {
                url,
                detail: other.to_string(),
            },
            _ => DirectoryError::Search {
                base: settings.config.base_dn.clone(),
                detail: other.to_string(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::controls::Control;

    #[test]
    fn the_cookie_is_read_from_the_control() {
        let raw: RawControl = PagedResults {
            size: 0,
            cookie: b"next page".to_vec(),
        }
        .into();
        let ctrls = vec![Control(None, raw)];
        assert_eq!(
            paged_cookie(&ctrls).unwrap().as_deref(),
            Some(&b"next page"[..])
        );
        assert_eq!(paged_cookie(&[]).unwrap(), None);
        let broken = RawControl {
            ctype: PAGED_RESULTS.into(),
            crit: false,
            val: Some(vec![0x30, 0x05, 0x02]),
        };
        assert!(paged_cookie(&[Control(None, broken)]).is_err());
    }
}
