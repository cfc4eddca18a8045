//! `postrust` (crate `postrust-server`), a PostgREST-compatible server, in front of a
//! [`TempPostgres`]. It serves the REST API under `/api` (PostgREST serves it at the root).

use crate::pg::TempPostgres;
use anyhow::Context;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const JWT_SECRET: &str = "callway-test-jwt-secret-at-least-32-characters";

pub struct Postrust {
    pub port: u16,
    child: Child,
    db_url: String,
}

/// Where the test command installed it (`scripts/test` caches it under ~/.cache/callway).
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("CALLWAY_POSTRUST_BIN") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let p = PathBuf::from(home).join(".cache/callway/postrust/bin/postrust");
    if p.exists() {
        Ok(p)
    } else {
        anyhow::bail!("postrust not found at {} (run scripts/test, which installs it, or set CALLWAY_POSTRUST_BIN)", p.display())
    }
}

impl Postrust {
    pub async fn start(pg: &TempPostgres) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        let port = crate::ports::free_port();
        let db_url = pg.authenticator_url();
        let child = Self::spawn(port, &db_url)?;
        let me = Self {
            port,
            child,
            db_url,
        };
        me.wait_healthy().await?;
        Ok(me)
    }

    fn spawn(port: u16, db_url: &str) -> anyhow::Result<Child> {
        Command::new(binary()?)
            .env("PGRST_DB_URI", db_url)
            .env("PGRST_DB_SCHEMAS", "public")
            .env("PGRST_DB_ANON_ROLE", "anon")
            .env("PGRST_JWT_SECRET", JWT_SECRET)
            .env("PGRST_SERVER_HOST", "127.0.0.1")
            .env("PGRST_SERVER_PORT", port.to_string())
            .env("PGRST_DB_ERRORS_VERBATIM", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting postrust")
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let port = self.port;
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let ok = client
                .get(format!("http://127.0.0.1:{port}/_/health"))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("postrust did not become healthy on port {port}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Stops the server (an outage: connections are refused).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, after [`Postrust::stop`].
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.child = Self::spawn(self.port, &self.db_url)?;
        self.wait_healthy().await
    }

    /// The base URL to give the lead store (what `SUPABASE_REST_URL` would be).
    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.port)
    }

    pub fn service_role_key(&self) -> String {
        crate::jwt::role_key(JWT_SECRET, "service_role")
    }
}

impl Drop for Postrust {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
