//! The deployment files agree with the code: `.env.example` lists exactly the settings
//! `callway-core` reads (variable names are the contract between the code, `.env`, docker compose
//! and the docs), and the Caddyfile sends the same security headers as the all-in-one launcher.
//! docker-compose.yml itself is checked by `e2e/deploy/compose.test.mjs` (a YAML parser is at
//! hand there) against the list this test guards.

use std::collections::BTreeSet;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Marks the start of the variables read by Caddy and docker compose, not by the services.
const PROXY_SECTION: &str = "# === Read by Caddy and docker compose only";

/// `KEY=` lines of `.env.example`, split into the services' settings and the proxy's.
fn env_example() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = read(".env.example");
    let (services, proxy) = text
        .split_once(PROXY_SECTION)
        .expect(".env.example has the Caddy/compose section marker");
    let keys = |t: &str| -> BTreeSet<String> {
        t.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
            .filter(|k| !k.is_empty())
            .collect()
    };
    (keys(services), keys(proxy))
}

/// The fields of `Settings` in config.rs, upper-cased: the environment variables it reads.
fn settings_fields() -> BTreeSet<String> {
    let src = read("crates/callway-core/src/config.rs");
    let start = src
        .find("pub struct Settings {")
        .expect("struct Settings in config.rs");
    let body = &src[start..];
    let body = &body[..body.find("\n}").expect("end of struct Settings")];
    body.lines()
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| {
            l.split_once(':')
                .map(|(name, _)| name.trim().to_uppercase())
        })
        .collect()
}

#[test]
fn env_example_lists_exactly_the_settings_the_services_read() {
    let (services, proxy) = env_example();
    let fields = settings_fields();
    assert!(fields.len() > 30, "parsed {fields:?}");
    let undocumented: Vec<_> = fields.difference(&services).collect();
    let unknown: Vec<_> = services.difference(&fields).collect();
    assert!(
        undocumented.is_empty(),
        "settings read by config.rs but missing from .env.example: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        ".env.example lists variables no service reads (move them to the Caddy/compose \
         section or delete them): {unknown:?}"
    );
    let clash: Vec<_> = proxy.intersection(&fields).collect();
    assert!(clash.is_empty(), "in both sections: {clash:?}");
}

/// `{$NAME}` / `{$NAME:default}` placeholders of the Caddyfile.
fn caddy_placeholders(caddyfile: &str) -> BTreeSet<String> {
    caddyfile
        .split("{$")
        .skip(1)
        .filter_map(|rest| {
            rest.split(['}', ':'])
                .next()
                .map(|name| name.trim().to_owned())
        })
        .collect()
}

#[test]
fn every_caddyfile_placeholder_is_documented_in_env_example() {
    let caddyfile = read("Caddyfile");
    let (services, proxy) = env_example();
    let placeholders = caddy_placeholders(&caddyfile);
    for name in [
        "CALLWAY_SITE_ADDRESS",
        "CALLWAY_STATIC_DIR",
        "TOKEN_SVC_UPSTREAMS",
        "TOOLS_SVC_UPSTREAMS",
        "WEBHOOK_SVC_UPSTREAMS",
        "MEDIA_BRIDGE_UPSTREAMS",
    ] {
        assert!(placeholders.contains(name), "{name} in the Caddyfile");
    }
    for p in &placeholders {
        assert!(
            services.contains(p) || proxy.contains(p),
            "Caddyfile placeholder {p} is not in .env.example"
        );
    }
}

#[test]
fn the_launcher_and_the_caddyfile_send_the_same_security_headers() {
    let caddyfile = read("Caddyfile");
    // The Caddyfile's CSP, as production serves it.
    let line = caddyfile
        .lines()
        .find(|l| l.trim_start().starts_with("Content-Security-Policy"))
        .expect("a CSP header in the Caddyfile");
    let csp = line
        .split_once('"')
        .and_then(|(_, v)| v.rsplit_once('"'))
        .map(|(v, _)| v)
        .unwrap();
    assert_eq!(csp, callway::site::CONTENT_SECURITY_POLICY);
    for (name, value) in callway::site::SECURITY_HEADERS {
        let expected = format!("{name} \"{value}\"");
        assert!(
            caddyfile.lines().any(|l| l.trim() == expected),
            "the Caddyfile sends {expected}"
        );
    }
    assert!(caddyfile.contains("Strict-Transport-Security \"max-age="));
}
