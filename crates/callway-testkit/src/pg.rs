//! A throwaway PostgreSQL: `initdb` in a temp dir (as the `postgres` user when we are root, since
//! initdb refuses root), trust auth, a free port, fsync off. The Supabase roles are recreated and
//! `supabase/migrations` applied in order, as `supabase db push` would.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio_postgres::NoTls;

pub const AUTHENTICATOR_PASSWORD: &str = "authenticator-test-password";

pub struct TempPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

fn pg_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("CALLWAY_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context(
            "PostgreSQL server binaries not found under /usr/lib/postgresql (set CALLWAY_PG_BIN)",
        )?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .context("no PostgreSQL version with a postgres binary")
}

fn is_root() -> bool {
    // SAFETY-free check: /proc/self/status is always readable for ourselves.
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn run_as_owner(bin: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    let out = if is_root() {
        Command::new("runuser")
            .arg("-u")
            .arg("postgres")
            .arg("--")
            .arg(bin)
            .args(args)
            .output()
    } else {
        Command::new(bin).args(args).output()
    }
    .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}{}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

impl TempPostgres {
    /// Starts a fresh cluster with the Supabase roles and every migration applied.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = pg_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("callway-pg-").tempdir()?;
        if is_root() {
            let status = Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()?;
            if !status.success() {
                bail!("chown of the temp PostgreSQL dir failed");
            }
        }
        let data = dir.path().join("data");
        let data_s = data.to_string_lossy().to_string();
        run_as_owner(
            &bin.join("initdb"),
            &[
                "-D",
                &data_s,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        let port = crate::ports::free_port();
        let sock = dir.path().to_string_lossy().to_string();
        let opts = format!("-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off");
        let log = dir.path().join("pg.log").to_string_lossy().to_string();
        run_as_owner(
            &bin.join("pg_ctl"),
            &["-D", &data_s, "-o", &opts, "-l", &log, "-w", "start"],
        )?;
        let pg = Self { port, dir, bin };
        pg.bootstrap().await?;
        Ok(pg)
    }

    pub async fn connect(
        &self,
        user: &str,
        password: Option<&str>,
    ) -> anyhow::Result<tokio_postgres::Client> {
        let mut conf = format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres",
            self.port
        );
        if let Some(p) = password {
            conf.push_str(&format!(" password={p}"));
        }
        let (client, conn) = tokio_postgres::connect(&conf, NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// `postgres://authenticator:…@127.0.0.1:port/postgres`, the URL PostgREST connects with.
    pub fn authenticator_url(&self) -> String {
        format!(
            "postgres://authenticator:{AUTHENTICATOR_PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    async fn bootstrap(&self) -> anyhow::Result<()> {
        let admin = self.connect("postgres", None).await?;
        let root = crate::workspace_root();
        let roles = std::fs::read_to_string(root.join("supabase/tests/bootstrap_roles.sql"))?;
        admin
            .batch_execute(&roles)
            .await
            .context("bootstrap_roles.sql")?;
        admin
            .batch_execute(&format!(
                "alter role authenticator password '{AUTHENTICATOR_PASSWORD}'"
            ))
            .await?;
        let mut migrations: Vec<PathBuf> = std::fs::read_dir(root.join("supabase/migrations"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        migrations.sort();
        for m in migrations {
            let sql = std::fs::read_to_string(&m)?;
            let name = m
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let (version, label) = name.split_once('_').unwrap_or((&name, ""));
            // Each migration and its history row in one transaction, like the Supabase CLI.
            admin
                .batch_execute(&format!("begin;\n{sql}\n;insert into supabase_migrations.schema_migrations(version, name) values ('{version}', '{label}');\ncommit;"))
                .await
                .with_context(|| format!("migration {}", m.display()))?;
        }
        admin.batch_execute("notify pgrst, 'reload schema'").await?;
        Ok(())
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").to_string_lossy().to_string();
        let _ = run_as_owner(
            &self.bin.join("pg_ctl"),
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
    }
}
