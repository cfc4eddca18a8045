// Static checks of docker-compose.yml, deploy/Dockerfile and deploy/otel-collector.yaml (Docker
// does not run here, so these catch what `docker compose up` would trip on): the files parse,
// every reference resolves, our services get only variables the code reads (the list of
// .env.example, which tests/deploy_files.rs keeps equal to config.rs), and the image builds the
// binaries compose runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../helpers.mjs';

const read = (p) => readFileSync(join(ROOT, p), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true });
const services = compose.services;
const OUR_BINARIES = ['token-svc', 'tools-svc', 'webhook-svc', 'media-bridge'];
const PORT_VARS = { 'token-svc': 'TOKEN_SVC_PORT', 'tools-svc': 'TOOLS_SVC_PORT', 'webhook-svc': 'WEBHOOK_SVC_PORT', 'media-bridge': 'MEDIA_BRIDGE_PORT' };

function envExample() {
  const [svc, proxy] = read('.env.example').split('# === Read by Caddy and docker compose only');
  const keys = (t) => new Map(t.split('\n').filter((l) => !l.trimStart().startsWith('#') && l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1)]));
  return { services: keys(svc), proxy: keys(proxy ?? '') };
}
const ENV = envExample();
const envOf = (s) => (Array.isArray(s.environment)
  ? Object.fromEntries(s.environment.map((e) => e.split('=')))
  : s.environment ?? {});

test('docker-compose.yml parses and every reference resolves', () => {
  assert.ok(services && typeof services === 'object');
  for (const [name, s] of Object.entries(services)) {
    assert.ok(s.image || s.build, `${name} has an image or a build`);
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) {
      assert.ok(services[d], `${name} depends on ${d}, which exists`);
      // A service outside any profile must not wait for one that only runs in a profile.
      if (!s.profiles) assert.ok(!services[d].profiles, `${name} depends on ${d}, which is profile-only`);
    }
    for (const v of s.volumes ?? []) {
      const src = String(v).split(':')[0];
      if (src.startsWith('./')) assert.ok(existsSync(join(ROOT, src)), `${name} mounts ${src}, which exists`);
      else assert.ok(compose.volumes && src in compose.volumes, `${name} uses named volume ${src}, which is declared`);
    }
  }
  for (const needed of ['caddy', ...OUR_BINARIES, 'redis', 'otel-collector', 'jaeger', 'postgres', 'postgrest']) {
    assert.ok(services[needed], `service ${needed}`);
  }
  assert.deepEqual(services.postgres.profiles, ['local-db']);
  assert.deepEqual(services.postgrest.profiles, ['local-db']);
  assert.ok(services.jaeger.ports.some((p) => String(p).endsWith(':16686')), 'Jaeger UI on 16686');
});

test('our services run the one image, built from deploy/Dockerfile, with their own command', () => {
  for (const bin of OUR_BINARIES) {
    const s = services[bin];
    assert.equal(s.build?.dockerfile, 'deploy/Dockerfile', `${bin} builds deploy/Dockerfile`);
    assert.equal(s.build?.context, '.', `${bin} builds from the repository root`);
    assert.equal(s.image, 'callway:latest');
    assert.deepEqual(s.command, [bin]);
    assert.equal(s.env_file, '.env');
    assert.ok(existsSync(join(ROOT, 'services', bin, 'Cargo.toml')), `package ${bin} exists in the workspace`);
    const env = envOf(s);
    assert.equal(env.CALLWAY_HOST, '0.0.0.0', `${bin} listens on the compose network`);
    assert.equal(env.REDIS_URL, 'redis://redis:6379');
    assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://otel-collector:4318');
    // The port it listens on is the default of .env.example and the one Caddy is given.
    const port = ENV.services.get(PORT_VARS[bin]);
    assert.equal(String(env[PORT_VARS[bin]]), port, `${bin} on ${port}`);
    assert.deepEqual(s.expose.map(String), [port]);
  }
  for (const [name, s] of Object.entries(services)) {
    if (s.build) assert.equal(s.build.dockerfile, 'deploy/Dockerfile', `${name}: the only image we build`);
  }
});

test('our services are given only variables the code reads', () => {
  for (const bin of OUR_BINARIES) {
    for (const key of Object.keys(envOf(services[bin]))) {
      assert.ok(ENV.services.has(key), `${bin}: ${key} is a setting of .env.example / config.rs`);
    }
  }
});

test('Caddy gets the Caddyfile, the page and an upstream list per service', () => {
  const c = services.caddy;
  assert.match(c.image, /^caddy:2\.6/, 'the Caddy version the Caddyfile is written for');
  assert.ok(c.volumes.includes('./Caddyfile:/etc/caddy/Caddyfile:ro'));
  const env = envOf(c);
  const staticMount = c.volumes.find((v) => v.startsWith('./public:'));
  assert.equal(env.CALLWAY_STATIC_DIR, staticMount.split(':')[1]);
  const placeholders = new Set([...read('Caddyfile').matchAll(/\{\$([A-Z0-9_]+)/g)].map((m) => m[1]));
  for (const key of Object.keys(env)) {
    assert.ok(placeholders.has(key), `caddy: ${key} is used by the Caddyfile`);
    assert.ok(ENV.proxy.has(key) || ENV.services.has(key), `caddy: ${key} is documented in .env.example`);
  }
  for (const bin of OUR_BINARIES) {
    const upstreamVar = `${PORT_VARS[bin].replace(/_PORT$/, '')}_UPSTREAMS`;
    const [host, port] = env[upstreamVar].split(':');
    assert.equal(host, bin, `${upstreamVar} names the ${bin} service`);
    assert.equal(port, ENV.services.get(PORT_VARS[bin]));
  }
});

test('the Dockerfile builds every binary compose runs, in a release build, and runs them unprivileged', () => {
  const dockerfile = read('deploy/Dockerfile');
  const build = dockerfile.split('\n').filter((l) => /^RUN cargo build /.test(l));
  assert.equal(build.length, 1, 'one `RUN cargo build` line (scripts/test runs it natively)');
  assert.match(build[0], /--release/);
  assert.match(build[0], /--locked/);
  assert.match(dockerfile, /^FROM rust:1\.95-bookworm AS build$/m);
  assert.match(dockerfile, /^FROM debian:bookworm-slim$/m);
  assert.match(dockerfile, /^USER callway$/m);
  const copied = dockerfile.match(/for bin in ([^;]+);/)[1].trim().split(/\s+/);
  const commands = Object.values(services).filter((s) => s.image === 'callway:latest').map((s) => s.command[0]);
  for (const c of commands) assert.ok(copied.includes(c), `the image contains ${c}`);
  assert.ok(copied.includes('callway'), 'and the all-in-one launcher');
  const ignore = read('.dockerignore');
  for (const p of ['target/', 'node_modules/', '.env']) assert.ok(ignore.split('\n').includes(p), `.dockerignore has ${p}`);
});

test('traces go from the services to the collector and on to Jaeger', () => {
  const otel = parse(read('deploy/otel-collector.yaml'));
  const endpoint = new URL(envOf(services['token-svc']).OTEL_EXPORTER_OTLP_ENDPOINT);
  assert.ok(services[endpoint.hostname], 'the OTLP endpoint is a compose service');
  assert.equal(otel.receivers.otlp.protocols.http.endpoint, `0.0.0.0:${endpoint.port}`);
  const pipeline = otel.service.pipelines.traces;
  for (const r of pipeline.receivers) assert.ok(otel.receivers[r], `receiver ${r} defined`);
  for (const p of pipeline.processors) assert.ok(otel.processors[p], `processor ${p} defined`);
  for (const e of pipeline.exporters) {
    assert.ok(otel.exporters[e], `exporter ${e} defined`);
    const host = otel.exporters[e].endpoint.split(':')[0];
    assert.ok(services[host], `exporter ${e} sends to compose service ${host}`);
  }
  assert.equal(envOf(services.jaeger).COLLECTOR_OTLP_ENABLED, 'true');
});
