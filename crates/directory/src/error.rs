//! What can go wrong with a directory, each as a sentence an administrator can act on. The
//! sentence reaches the portal, the CLI and the audit log (as the core's `PortError`); the
//! details of the LDAP library go to the log only. No sentence carries the bind password.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The `[directory]` section cannot be used as it is.
    #[error("the directory configuration is not usable: {0}")]
    Config(String),
    #[error("cannot reach the directory at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the directory at {url} did not answer within {secs} s ({what})")]
    Timeout {
        url: String,
        what: &'static str,
        secs: u64,
    },
    #[error("the directory at {url} refused StartTLS: {detail}")]
    StartTls { url: String, detail: String },
    #[error("the directory's certificate is not trusted by {trusted_by} ({detail}): name the CA that issued it in ca_file")]
    CertificateNotTrusted { trusted_by: String, detail: String },
    #[error("the directory's certificate is not valid for {host} ({detail}): use the host name or address the certificate names in url")]
    CertificateName { host: String, detail: String },
    #[error("the TLS connection to the directory at {url} failed: {detail}")]
    Tls { url: String, detail: String },
    #[error("the directory refused the sign-in of {bind_dn}: {detail}")]
    BindRefused { bind_dn: String, detail: String },
    #[error("the directory has no entry {base} (the base DN of the search)")]
    NoSuchBase { base: String },
    #[error("the directory referred the search to {refs} instead of answering it; Tessera does not follow referrals, so the reading would be incomplete: point url at the server that holds {base}, or narrow base_dn to the part of the tree that holds the people (set ignore_referrals = true only if the referred parts hold no one)")]
    Referral { base: String, refs: String },
    #[error("the search under {base} found more than {limit} entries, the configured max_entries: nothing was changed (raise max_entries or narrow base_dn or filter)")]
    TooManyEntries { base: String, limit: usize },
    #[error("the directory stopped the search under {base} at its own size limit ({detail}): it did not honour paged results for this account; nothing was changed")]
    ServerSizeLimit { base: String, detail: String },
    #[error("the directory refused the search under {base}: {detail}")]
    Search { base: String, detail: String },
    #[error("the directory sent an entry Tessera cannot read{at}: {detail}")]
    Malformed { at: String, detail: String },
    #[error("the directory closed the connection during the {what}")]
    Closed { what: &'static str },
}

impl DirectoryError {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }
}

/// The result codes of RFC 4511 an administrator may meet, by name.
pub(crate) fn result_name(rc: u32) -> &'static str {
    match rc {
        1 => "operations error",
        2 => "protocol error",
        3 => "time limit exceeded",
        4 => "size limit exceeded",
        7 => "authentication method not supported",
        8 => "stronger authentication required",
        10 => "referral",
        11 => "administrative limit exceeded",
        12 => "unavailable critical extension",
        13 => "confidentiality required",
        32 => "no such object",
        34 => "invalid DN syntax",
        48 => "inappropriate authentication",
        49 => "invalid credentials",
        50 => "insufficient access rights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwilling to perform",
        80 => "other",
        _ => "error",
    }
}

/// `invalid credentials (49): 80090308: LdapErr: ...` — the code by name, then what the server said.
pub(crate) fn describe_result(rc: u32, text: &str) -> String {
    let text = text.trim().trim_end_matches('\0');
    if text.is_empty() {
        format!("{} ({rc})", result_name(rc))
    } else {
        format!("{} ({rc}): {text}", result_name(rc))
    }
}

/// Who vouches for the directory's certificate, for messages.
pub(crate) fn trust_source(ca_file: Option<&Path>) -> String {
    match ca_file {
        Some(path) => path.display().to_string(),
        None => "the Mozilla roots Tessera knows (no ca_file is configured)".into(),
    }
}
