//! [`OpenAiSim`]: binds, serves, records.

use crate::config::{Failure, SidebandRefusal, SimConfig};
use crate::recording::Recording;
use crate::scenario::Scenario;
use crate::state::{lock, Shared};
use hyper::service::service_fn;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A running simulator.
pub struct OpenAiSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl OpenAiSim {
    /// Binds `cfg.bind`, spawns the server on the current tokio runtime and returns.
    pub async fn start(cfg: SimConfig) -> anyhow::Result<OpenAiSim> {
        cfg.scenario.check()?;
        let listener = TcpListener::bind(cfg.bind).await?;
        let addr = listener.local_addr()?;
        let media_ip = if addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            addr.ip()
        };
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(&cfg, media_ip, rx.clone()));
        let srv_shared = shared.clone();
        let mut stop = rx;
        let server = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            let stopped = async move {
                let _ = stop.changed().await;
            };
            callway_ws::accept_until(&listener, &mut conns, stopped, |stream, _| {
                let shared = srv_shared.clone();
                let svc = service_fn(move |req| crate::http::handle(req, shared.clone()));
                Some(callway_ws::serve_http1(stream, svc, None))
            })
            .await;
            // Only accepting stops: requests under way are answered (sessions already upgraded
            // run in their own tasks and close on the same signal).
            conns.detach_all();
        });
        Ok(OpenAiSim {
            addr,
            shared,
            shutdown: tx,
            server,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `base_url() + "/realtime/calls"`.
    pub fn realtime_calls_url(&self) -> String {
        format!("{}/realtime/calls", self.base_url())
    }

    /// `ws://IP:PORT/v1/realtime`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }

    /// Script for sessions started from now on.
    pub fn set_scenario(&self, s: Scenario) {
        *lock(&self.shared.scenario) = s;
    }

    /// A different script for WebSocket sessions started from now on (`None`: the common one).
    pub fn set_websocket_scenario(&self, s: Option<Scenario>) {
        *lock(&self.shared.ws_scenario) = s;
    }

    /// Forces a failure on the next HTTP request (REST call or WebSocket handshake).
    pub fn fail_next(&self, f: Failure) {
        *lock(&self.shared.fail_next) = Some(f);
    }

    /// Makes every client secret minted so far expired (to test expiry without waiting).
    pub fn expire_client_secrets(&self) {
        for s in lock(&self.shared.secrets).values_mut() {
            s.expires_at = 0;
        }
    }

    /// `rtc_…` ids of the WebRTC calls live now (not hung up, peer not gone), sorted.
    pub fn live_calls(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.shared.calls).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Failure knob: drops every sideband attached to this call now, without a close frame (as
    /// a network fault would); the call goes on and a new attach is accepted. Returns how many
    /// were dropped (0 for an unknown or ended call).
    pub fn drop_sidebands(&self, call_id: &str) -> usize {
        let call = lock(&self.shared.calls).get(call_id).cloned();
        call.map_or(0, |c| c.drop_sidebands())
    }

    /// Failure knob: refuses the next sideband attach (any call) before the upgrade.
    pub fn refuse_next_sideband(&self, how: SidebandRefusal) {
        *lock(&self.shared.sideband_refusal) = Some(how);
    }

    /// Sets (or clears) the `shutdown_date` `GET /v1/models/{model}` shows for `model`.
    pub fn set_model_shutdown(&self, model: &str, date: Option<chrono::NaiveDate>) {
        let mut m = lock(&self.shared.model_shutdowns);
        match date {
            Some(d) => m.insert(model.to_string(), d),
            None => m.remove(model),
        };
    }

    /// `base_url() + "/models/" + model`.
    pub fn model_url(&self, model: &str) -> String {
        format!("{}/models/{model}", self.base_url())
    }

    /// Snapshot of everything recorded.
    pub fn recorded(&self) -> Recording {
        self.shared.recorder.snapshot()
    }

    /// Stops accepting, closes sessions (WebSocket close 1001, WebRTC peers disconnect), waits for the listener.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
