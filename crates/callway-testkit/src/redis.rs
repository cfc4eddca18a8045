//! A throwaway `redis-server` on a free port, nothing persisted.

use anyhow::Context;
use std::process::{Child, Command, Stdio};

pub struct TempRedis {
    pub port: u16,
    child: Child,
}

impl TempRedis {
    pub async fn start() -> anyhow::Result<Self> {
        let port = crate::ports::free_port();
        let child = Self::spawn(port)?;
        crate::ports::wait_for_port(port, std::time::Duration::from_secs(10)).await?;
        Ok(Self { port, child })
    }

    fn spawn(port: u16) -> anyhow::Result<Child> {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (apt-get install redis-server)")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered; what clients
    /// send meanwhile is executed when it is thawed.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Resumes a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} redis-server");
    }

    /// Kills the server and starts an empty one on the same port (a restart that kept nothing).
    pub async fn restart_empty(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port)?;
        crate::ports::wait_for_port(self.port, std::time::Duration::from_secs(10)).await
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
