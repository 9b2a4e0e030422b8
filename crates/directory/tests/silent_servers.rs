//! Servers that do not behave: one that accepts the connection and never answers (the timeout
//! ends the reading with a sentence), and one that closes every connection at once (an
//! `ldaps://` URL at a port that speaks no TLS). Real sockets on loopback; no LDAP server needed.

use tessera_core::ports::Directory;
use tessera_directory::{DirectoryConfig, LdapDirectory};
use tokio::net::TcpListener;

fn config(url: String) -> DirectoryConfig {
    DirectoryConfig {
        url,
        start_tls: false,
        ca_file: None,
        bind_dn: None,
        bind_password_file: None,
        base_dn: "ou=people,dc=example,dc=org".into(),
        preset: Default::default(),
        filter: None,
        page_size: 100,
        timeout_secs: 1,
        max_entries: 10,
        sync_interval_minutes: 0,
        groups: None,
        group_base_dn: None,
        group_filter: None,
        group_member_attribute: None,
        disabled_attribute: None,
        disabled_value: None,
        free_attributes: Vec::new(),
        mapping: Default::default(),
        ignore_referrals: false,
        allow_plain_bind: false,
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts, keeps the connection open, says nothing.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            held.push(socket);
        }
    });
    let directory = LdapDirectory::new(config(format!("ldap://127.0.0.1:{port}"))).unwrap();
    let err = directory.read().await.unwrap_err().message;
    assert_eq!(
        err,
        format!("the directory at ldap://127.0.0.1:{port} did not answer within 1 s (search)")
    );
    // StartTLS waits for the server's answer within the connection's timeout.
    let mut starttls = config(format!("ldap://127.0.0.1:{port}"));
    starttls.start_tls = true;
    let err = LdapDirectory::new(starttls)
        .unwrap()
        .read()
        .await
        .unwrap_err()
        .message;
    assert!(
        err.contains("did not answer within 1 s (connection)"),
        "{err}"
    );
    silent.abort();
}

#[tokio::test]
async fn a_port_without_tls_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let closing = tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
        }
    });
    let directory = LdapDirectory::new(config(format!("ldaps://127.0.0.1:{port}"))).unwrap();
    let err = directory.read().await.unwrap_err().message;
    assert!(
        err.starts_with(&format!(
            "the TLS connection to the directory at ldaps://127.0.0.1:{port} failed"
        )),
        "{err}"
    );
    closing.abort();
    assert_eq!(
        directory.describe(),
        format!("ldaps://127.0.0.1:{port} ou=people,dc=example,dc=org")
    );
}

#[test]
fn a_password_is_not_sent_in_clear_over_a_network() {
    let file = std::env::temp_dir().join(format!("tessera-bind-{}.pw", std::process::id()));
    std::fs::write(&file, "secret\n").unwrap();
    let with_password = |url: &str| DirectoryConfig {
        bind_dn: Some("cn=tessera,dc=example,dc=org".into()),
        bind_password_file: Some(file.clone()),
        ..config(url.into())
    };
    let err = LdapDirectory::new(with_password("ldap://ldap.example.org")).unwrap_err();
    assert!(err.to_string().contains("travel unencrypted"), "{err}");
    // over TLS, on this machine, or when the administrator says so in the configuration
    for url in [
        "ldaps://ldap.example.org",
        "ldap://127.0.0.1:389",
        "ldap://localhost",
        "ldap://[::1]:389",
    ] {
        LdapDirectory::new(with_password(url)).unwrap();
    }
    let mut allowed = with_password("ldap://ldap.example.org");
    allowed.allow_plain_bind = true;
    LdapDirectory::new(allowed).unwrap();
    let mut start_tls = with_password("ldap://ldap.example.org");
    start_tls.start_tls = true;
    LdapDirectory::new(start_tls).unwrap();
    // anonymous reading sends no password
    LdapDirectory::new(config("ldap://ldap.example.org".into())).unwrap();
    std::fs::remove_file(&file).unwrap();
}
