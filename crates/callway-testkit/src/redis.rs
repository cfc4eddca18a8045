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
        let child = Command::new("redis-server")
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
            .context("starting redis-server (apt-get install redis-server)")?;
        crate::ports::wait_for_port(port, std::time::Duration::from_secs(10)).await?;
        Ok(Self { port, child })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
