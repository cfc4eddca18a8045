//! The all-in-one site: static page + every service's routes, as Caddy would put them together.

use actix_web::{middleware, web, App, HttpResponse, HttpServer};
use callway_core::secret::Secret;
use callway_core::Settings;
use serde_json::json;

/// Security headers matching the Caddyfile, so the sandbox behaves like production.
fn headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "strict-origin-when-cross-origin"))
        .add((
            "Permissions-Policy",
            "microphone=(self), camera=(), geolocation=()",
        ))
        .add(("X-Frame-Options", "DENY"))
}

fn session_secret(settings: &Settings) -> anyhow::Result<Secret> {
    match settings.session_secret() {
        Ok(s) => Ok(s.clone()),
        Err(callway_core::config::ConfigError::Missing(_)) => {
            tracing::warn!(
                "CALLWAY_SESSION_SECRET unset: using a random per-process secret (sandbox)"
            );
            Ok(Secret::new(format!(
                "{}{}",
                callway_core::session_token::WebSessionId::generate(),
                callway_core::session_token::WebSessionId::generate()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    let secret = session_secret(&settings)?;
    settings.callway_session_secret = Some(secret.clone());
    let contexts = match &settings.redis_url {
        Some(url) => callway_core::call_context::ContextStore::Redis(
            callway_core::redis_conn::connect(url).await?,
        ),
        None => callway_core::call_context::ContextStore::memory(),
    };
    let mut tools = tools_svc::state_from_settings(&settings)?;
    tools.calls = tools_svc::calls_from_settings(&settings, contexts.clone()).await?;
    let webhooks = match &settings.telnyx_public_key {
        Some(key) => Some(webhook_svc::WebhookState {
            key: webhook_svc::WebhookKey::from_base64(key).map_err(|reason| {
                callway_core::config::ConfigError::Invalid {
                    name: "TELNYX_PUBLIC_KEY",
                    reason,
                }
            })?,
            contexts: contexts.clone(),
            leads: tools.leads.clone(),
            telnyx: Some(callway_core::telnyx::TelnyxClient::from_settings(
                &settings,
            )?),
            voicemail: webhook_svc::voicemail_action(&settings)?,
        }),
        None => None,
    };
    let token = match &settings.openai_api_key {
        Some(_) => Some(token_svc::state_from_settings(&settings).await?),
        None => None,
    };
    let static_dir = settings.callway_static_dir.clone();
    let addr = (settings.callway_host.clone(), settings.callway_port);
    let mode = if token.is_some() {
        "live OpenAI"
    } else {
        "sandbox (no OPENAI_API_KEY)"
    };
    let server = HttpServer::new(move || {
        let tools = tools.clone();
        let token = token.clone();
        let webhooks = webhooks.clone();
        let mut app = App::new()
            .wrap(tracing_actix_web::TracingLogger::default())
            .wrap(headers())
            .configure(tools_svc::configure(tools.clone()));
        if let Some(t) = token.clone() {
            app = app.configure(token_svc::configure(t));
        }
        if let Some(w) = webhooks.clone() {
            app = app.configure(webhook_svc::configure(w));
        }
        app.route(
            "/api/health",
            web::get().to(move || {
                let tools = tools.clone();
                let token = token.clone();
                async move {
                    let mut services =
                        vec![serde_json::to_value(tools_svc::health_report(&tools).await)
                            .unwrap_or_default()];
                    if let Some(t) = &token {
                        services.push(
                            serde_json::to_value(token_svc::health_report(t).await)
                                .unwrap_or_default(),
                        );
                    }
                    let ok = services.iter().all(|s| s["status"] == "ok");
                    HttpResponse::Ok().json(json!({
                        "service": "callway",
                        "version": env!("CARGO_PKG_VERSION"),
                        "status": if ok { "ok" } else { "degraded" },
                        "services": services,
                    }))
                }
            }),
        )
        .service(actix_files::Files::new("/", &static_dir).index_file("index.html"))
    })
    .bind(addr.clone())?
    .run();
    tracing::info!(mode, "Callway on http://{}:{}/", addr.0, addr.1);
    println!("Callway ({mode}) on http://{}:{}/", addr.0, addr.1);
    server.await?;
    Ok(())
}
