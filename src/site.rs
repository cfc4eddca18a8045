//! The all-in-one site: static page + every service's routes, as Caddy would put them together.

use actix_web::middleware::from_fn;
use actix_web::{middleware, web, App, HttpResponse, HttpServer};
use callway_core::call_context::ContextStore;
use callway_core::config::ConfigError;
use callway_core::http_timeouts::{body_deadline, HttpTimeouts};
use callway_core::secret::Secret;
use callway_core::Settings;
use serde_json::json;

/// The Caddyfile's Content-Security-Policy. The page talks to its own origin only: it posts its
/// SDP offer to us (the server creates the OpenAI call), so no third-party origin is allowed
/// (the RTP media is not governed by CSP). It has no inline script or style and loads nothing
/// from elsewhere; `tests/deploy_files.rs` checks this matches the Caddyfile.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self'; \
frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";

/// The other security headers, as in the Caddyfile. HSTS is left to whatever terminates HTTPS
/// (Caddy in production): the launcher itself only speaks plain HTTP.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    (
        "Permissions-Policy",
        "microphone=(self), camera=(), geolocation=()",
    ),
    ("X-Frame-Options", "DENY"),
];

/// Security headers matching the Caddyfile, so the sandbox behaves like production.
fn headers(csp: &str) -> middleware::DefaultHeaders {
    SECURITY_HEADERS
        .iter()
        .fold(middleware::DefaultHeaders::new(), |h, &(name, value)| {
            h.add((name, value))
        })
        .add(("Content-Security-Policy", csp.to_owned()))
}

fn session_secret(settings: &Settings) -> anyhow::Result<Secret> {
    match settings.session_secret() {
        Ok(s) => Ok(s.clone()),
        Err(ConfigError::Missing(_)) => {
            tracing::warn!(
                "CALLWAY_SESSION_SECRET unset: using a random per-process secret (sandbox)"
            );
            Ok(Secret::new(callway_core::call_context::random_id(
                "sandbox-session-secret-",
            )))
        }
        Err(e) => Err(e.into()),
    }
}

async fn context_store(settings: &Settings) -> anyhow::Result<ContextStore> {
    Ok(
        ContextStore::from_settings(settings, callway_core::call_context::Process::AllInOne)
            .await?,
    )
}

fn webhook_state(
    settings: &Settings,
    contexts: &ContextStore,
    leads: &callway_core::lead_store::LeadStore,
) -> Result<Option<webhook_svc::WebhookState>, ConfigError> {
    if settings.telnyx_public_key.is_none() {
        return Ok(None);
    }
    webhook_svc::state_from_settings(settings, contexts.clone(), leads.clone()).map(Some)
}

/// A running site: its URL, the simulators it started, and the server to await or stop.
pub struct Site {
    pub url: String,
    /// `ws://HOST:PORT` of the media bridge (Telnyx media streams go to `/media/telnyx`).
    pub bridge_url: String,
    pub sims: crate::sandbox::Simulators,
    pub server: actix_web::dev::Server,
    pub bridge: Bridge,
    /// The call-context store every service here shares (tests check the cleanup).
    pub contexts: ContextStore,
    /// The sideband supervisor (tools-svc's hold on the web calls); aborted with the site.
    pub sideband: SidebandTask,
    /// The business webhooks' worker (the sandbox writes them to a local log), when configured.
    pub business: Option<SidebandTask>,
    /// The missed callbacks' retry worker (when calls can be placed).
    pub retries: Option<SidebandTask>,
}

/// A background task of the site (the sideband supervisor, the business webhooks' worker),
/// aborted when the site goes away.
pub struct SidebandTask(pub tokio::task::JoinHandle<()>);

impl Drop for SidebandTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The media bridge running next to the site on its own listener (it is a hyper server, not an
/// actix one, as in production where Caddy routes `/media/telnyx` to it).
pub struct Bridge {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Bridge {
    /// Stops accepting media sockets and lets running calls finish (bounded by the bridge's
    /// drain deadline).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let listener =
        std::net::TcpListener::bind((settings.callway_host.as_str(), settings.callway_port))?;
    let bridge =
        std::net::TcpListener::bind((settings.callway_host.as_str(), settings.media_bridge_port))?;
    let site = start_with_bridge(settings, listener, bridge).await?;
    let mode = site.sims.describe();
    tracing::info!(mode = %mode, bridge = %site.bridge_url, "Callway on {}/", site.url);
    println!("Callway ({mode}) on {}/", site.url);
    site.server.await?;
    site.bridge.stop().await;
    Ok(())
}

/// Starts everything on `listener` (port 0 in tests), the media bridge on a free loopback port,
/// and returns without waiting.
pub async fn start(settings: Settings, listener: std::net::TcpListener) -> anyhow::Result<Site> {
    let bridge = std::net::TcpListener::bind("127.0.0.1:0")?;
    start_with_bridge(settings, listener, bridge).await
}

/// Same, with the media bridge on `bridge_listener`.
pub async fn start_with_bridge(
    mut settings: Settings,
    listener: std::net::TcpListener,
    bridge_listener: std::net::TcpListener,
) -> anyhow::Result<Site> {
    let site_url = format!("http://{}", listener.local_addr()?);
    let mut bridge_addr = bridge_listener.local_addr()?;
    if bridge_addr.ip().is_unspecified() {
        bridge_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let bridge_url = format!("ws://{bridge_addr}");
    // The all-in-one may always use the embedded stand-ins for what is not configured.
    settings.callway_sandbox = true;
    let sims = crate::sandbox::start_missing(&mut settings, &site_url, &bridge_url).await?;
    settings.callway_session_secret = Some(session_secret(&settings)?);

    let contexts = context_store(&settings).await?;
    let tools = tools_svc::state_from_settings(&settings, contexts.clone()).await?;
    let webhooks = webhook_state(&settings, &contexts, &tools.leads)?;
    let token = token_svc::state_from_settings(&settings, Some(contexts.clone())).await?;
    // The server's hold on every web voice call: the agent's tools run here, never in the page.
    let sideband = tools_svc::sideband_from_settings(&settings, tools.clone())?.spawn();
    let business =
        webhook_svc::deliver::Deliverer::from_settings(&settings, tools.business.clone())?
            .map(|d| SidebandTask(d.spawn()));
    let retries = tools_svc::retries::RetryWorker::from_settings(&settings, tools.clone())?
        .map(|w| SidebandTask(w.spawn()));
    let bridge = start_bridge(&settings, &contexts, bridge_listener)?;
    let static_dir = settings.callway_static_dir.clone();
    let csp = CONTENT_SECURITY_POLICY.to_owned();

    let site_contexts = contexts.clone();
    let timeouts = HttpTimeouts::from_settings(&settings);
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .wrap(from_fn(body_deadline(timeouts.body)))
            .wrap(tracing_actix_web::TracingLogger::default())
            .wrap(headers(&csp))
            .wrap(from_fn(callway_core::http_metrics::record))
            .configure(tools_svc::configure(tools.clone()))
            .configure(token_svc::configure(token.clone()));
        if let Some(w) = webhooks.clone() {
            app = app.configure(webhook_svc::configure(w));
        }
        let (tools, token) = (tools.clone(), token.clone());
        let health = move || {
            let (tools, token) = (tools.clone(), token.clone());
            async move { HttpResponse::Ok().json(site_health(&tools, &token).await) }
        };
        // `/health` too, so the Caddyfile's active health checks accept the launcher as an
        // upstream (a tunnelled real phone test, README).
        app.route("/api/health", web::get().to(health.clone()))
            .route("/health", web::get().to(health))
            .service(actix_files::Files::new("/", &static_dir).index_file("index.html"))
    })
    .client_request_timeout(timeouts.header)
    .client_disconnect_timeout(timeouts.disconnect)
    .listen(listener)?
    .run();
    Ok(Site {
        url: site_url,
        bridge_url,
        sims,
        server,
        bridge,
        contexts: site_contexts,
        sideband: SidebandTask(sideband),
        business,
        retries,
    })
}

/// The bridge shares the site's context store (memory in the sandbox, Redis otherwise).
fn start_bridge(
    settings: &Settings,
    contexts: &ContextStore,
    listener: std::net::TcpListener,
) -> anyhow::Result<Bridge> {
    let tuning = media_bridge::Tuning::from_settings(settings);
    let state = media_bridge::state_with_store(settings, contexts.clone(), tuning)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(media_bridge::run(listener, state, async {
        let _ = stopped.await;
    }));
    Ok(Bridge { stop, task })
}

async fn site_health(
    tools: &tools_svc::ToolsState,
    token: &token_svc::TokenState,
) -> serde_json::Value {
    let services = [
        serde_json::to_value(tools_svc::health_report(tools).await).unwrap_or_default(),
        serde_json::to_value(token_svc::health_report(token).await).unwrap_or_default(),
    ];
    let ok = services.iter().all(|s| s["status"] == "ok");
    json!({
        "service": "callway",
        "version": env!("CARGO_PKG_VERSION"),
        "status": if ok { "ok" } else { "degraded" },
        "services": services,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_may_connect_to_its_own_origin_only() {
        assert!(CONTENT_SECURITY_POLICY.contains("connect-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY.contains("openai"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    }
}
