//! Tessera's store: one implementation of the core's `Store` trait that runs on SQLite (the
//! embedded default, one file) and on PostgreSQL (scale-out), through sqlx's `Any` driver. The SQL is
//! written once in the dialect both accept (`$1` parameters, `ON CONFLICT ... DO UPDATE`); the only
//! per-backend difference is the binary column type in the schema.

mod backend;
mod biometrics;
mod cluster;
mod counters;
mod open_jobs;
mod store;
mod user_conditions;
mod user_index;
mod user_search;
mod writes;

pub use backend::{Backend, SCHEMA_VERSION};
pub use store::SqlStore;

/// Helpers for tests that need a database of their own on a PostgreSQL server.
pub mod testing {
    use sqlx::Executor;

    fn with_database(base: &str, name: &str) -> String {
        let (prefix, query) = match base.split_once('?') {
            Some((p, q)) => (p, format!("?{q}")),
            None => (base, String::new()),
        };
        let cut = prefix
            .rfind('/')
            .filter(|&i| i > prefix.find("//").unwrap_or(0) + 1);
        match cut {
            Some(i) => format!("{}/{name}{query}", &prefix[..i]),
            None => format!("{prefix}/{name}{query}"),
        }
    }

    /// Creates an empty database with a unique name on the server of `base`; returns its URL.
    pub async fn fresh_postgres_database(base: &str) -> String {
        sqlx::any::install_default_drivers();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("tessera_test_{}_{}", std::process::id(), nanos);
        let pool = sqlx::AnyPool::connect(base)
            .await
            .expect("connect to PostgreSQL");
        pool.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        pool.close().await;
        with_database(base, &name)
    }

    pub async fn drop_postgres_database(base: &str, url: &str) {
        let name = url
            .rsplit('/')
            .next()
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("");
        if let Ok(pool) = sqlx::AnyPool::connect(base).await {
            let _ = pool
                .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                .await;
            pool.close().await;
        }
    }
}
