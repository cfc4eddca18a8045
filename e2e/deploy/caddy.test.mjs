// The real Caddy (Debian's 2.6) with the repository's Caddyfile, in front of small local upstreams
// that say which of them answered. Checks what a visitor, Telnyx and the ops team rely on: the page
// and its security headers, compression, each route reaching its service, the media WebSocket
// upgrade, body limits (413), request read timeouts (slowloris heads and trickled bodies are cut,
// a media WebSocket is not), and load balancing over an upstream list. The real services behind
// Caddy are exercised by the Rust topology test (tests/topology.rs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ROOT } from '../helpers.mjs';

const CADDY = process.env.CALLWAY_CADDY_BIN || 'caddy';
const EXPECTED_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
  'permissions-policy': 'microphone=(self), camera=(), geolocation=()',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'strict-origin-when-cross-origin',
};

/** A stand-in upstream: answers every request with who it is and what it got; echoes WebSocket frames. */
async function upstream(name) {
  const seen = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url !== '/health') seen.push({ method: req.method, url: req.url, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ upstream: name, method: req.method, url: req.url, bytes: body.length }));
    });
  });
  server.on('upgrade', (req, socket) => {
    seen.push({ method: req.method, url: req.url, upgrade: req.headers.upgrade });
    const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (frame) => {
      const text = decodeFrame(frame);
      if (text !== null) socket.write(encodeFrame(`${name}:${text}`, false));
    });
    socket.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { name, seen, server, addr: `127.0.0.1:${server.address().port}` };
}

/** One small text frame (masked when sent by a client, as RFC 6455 requires). */
function encodeFrame(text, masked) {
  const payload = Buffer.from(text);
  assert.ok(payload.length < 126);
  if (!masked) return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, body]);
}

function decodeFrame(buf) {
  if (buf.length < 2 || (buf[0] & 0x0f) !== 1) return null;
  const len = buf[1] & 0x7f;
  if ((buf[1] & 0x80) === 0) return buf.subarray(2, 2 + len).toString();
  const mask = buf.subarray(2, 6);
  return Buffer.from(buf.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4])).toString();
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const READ_HEADER_MS = 1000;
const READ_BODY_MS = 2000;
/** Far above both timeouts: a socket still open then was held by Caddy. */
const GIVE_UP_MS = 20000;

let caddy;
let base;
let dir;
const up = {};
let caddyLog = '';

before(async () => {
  for (const n of ['token', 'toolsA', 'toolsB', 'webhook', 'mediaA', 'mediaB']) up[n] = await upstream(n);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  dir = mkdtempSync(join(tmpdir(), 'callway-caddy-'));
  caddy = spawn(CADDY, ['run', '--adapter', 'caddyfile', '--config', join(ROOT, 'Caddyfile')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      XDG_DATA_HOME: join(dir, 'data'),
      XDG_CONFIG_HOME: join(dir, 'config'),
      CALLWAY_SITE_ADDRESS: base,
      CALLWAY_STATIC_DIR: join(ROOT, 'public'),
      TOKEN_SVC_UPSTREAMS: up.token.addr,
      TOOLS_SVC_UPSTREAMS: `${up.toolsA.addr} ${up.toolsB.addr}`,
      WEBHOOK_SVC_UPSTREAMS: up.webhook.addr,
      MEDIA_BRIDGE_UPSTREAMS: `${up.mediaA.addr} ${up.mediaB.addr}`,
      // Short, so the timeout tests below see them act; every other test is far quicker.
      CADDY_READ_HEADER_TIMEOUT: `${READ_HEADER_MS}ms`,
      CADDY_READ_BODY_TIMEOUT: `${READ_BODY_MS}ms`,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  caddy.stderr.on('data', (d) => { caddyLog += d; });
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const r = await fetch(`${base}/`);
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline || caddy.exitCode !== null) throw new Error(`caddy did not start:\n${caddyLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  caddy?.kill();
  for (const u of Object.values(up)) u.server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the page is served with every security header and no Server banner', async () => {
  for (const path of ['/', '/assets/js/agent.js', '/api/tools/save_lead']) {
    const r = await fetch(`${base}${path}`, { method: path.startsWith('/api') ? 'POST' : 'GET', body: path.startsWith('/api') ? '{}' : undefined });
    assert.equal(r.status, 200, path);
    for (const [name, value] of Object.entries(EXPECTED_HEADERS)) assert.equal(r.headers.get(name), value, `${name} on ${path}`);
    assert.equal(r.headers.get('server'), null, `no Server header on ${path}`);
  }
  const page = await (await fetch(`${base}/`)).text();
  assert.match(page, /<html/i);
  // The CSP forbids inline scripts: the page must not rely on any.
  assert.doesNotMatch(page, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline <script> in index.html');
});

test('the page is compressed with gzip or zstd as the browser asks', async () => {
  for (const encoding of ['gzip', 'zstd']) {
    const res = await new Promise((resolve, reject) => {
      request(`${base}/`, { headers: { 'accept-encoding': encoding } }, (r) => {
        const chunks = [];
        r.on('data', (c) => chunks.push(c));
        r.on('end', () => resolve({ headers: r.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject).end();
    });
    assert.equal(res.headers['content-encoding'], encoding);
    if (encoding === 'gzip') assert.match(gunzipSync(res.body).toString(), /<html/i);
    // Node 20 has no zstd decoder: check the frame magic number (RFC 8878) instead.
    else assert.equal(res.body.readUInt32LE(0), 0xfd2fb528);
  }
});

test('each API route reaches its own service, path and query intact', async () => {
  const cases = [
    ['POST', '/api/realtime/session', ['token']],
    ['GET', '/api/realtime/session', ['token']],
    ['POST', '/api/tools/save_lead', ['toolsA', 'toolsB']],
    ['POST', '/api/tools/trigger_call', ['toolsA', 'toolsB']],
    ['GET', '/api/calls/cx_123/events?after=2', ['toolsA', 'toolsB']],
    ['POST', '/api/telnyx/webhooks', ['webhook']],
    // The site's health is tools-svc's own report.
    ['GET', '/api/health', ['toolsA', 'toolsB'], '/health'],
  ];
  for (const [method, path, names, upstreamPath = path] of cases) {
    const r = await fetch(`${base}${path}`, { method, body: method === 'POST' ? '{"x":1}' : undefined });
    assert.equal(r.status, 200, path);
    const j = await r.json();
    assert.ok(names.includes(j.upstream), `${path} answered by ${j.upstream}`);
    assert.equal(j.url, upstreamPath);
  }
  // Not a known API path: a plain 404 from Caddy, no service and no static page involved.
  const r = await fetch(`${base}/api/nope`);
  assert.equal(r.status, 404);
  assert.equal(await r.text(), 'not found');
});

test('Telnyx webhook bodies reach webhook-svc byte for byte (the signature covers them)', async () => {
  const body = Buffer.from('{"data":{"event_type":"call.answered","payload":{"x":"é \\u00e9  "}}}\n');
  const before = up.webhook.seen.length;
  const r = await fetch(`${base}/api/telnyx/webhooks`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 200);
  assert.deepEqual(up.webhook.seen[before].body, body);
});

test('oversize bodies get 413 and never reach a service; webhooks may be larger', async () => {
  const before = up.toolsA.seen.length + up.toolsB.seen.length;
  const big = Buffer.alloc(20 * 1024, 'a');
  let r = await fetch(`${base}/api/tools/save_lead`, { method: 'POST', body: big });
  assert.equal(r.status, 413);
  assert.equal(up.toolsA.seen.length + up.toolsB.seen.length, before, 'tools-svc never saw it');
  // Chunked (no Content-Length): cut off by request_body, still a 413.
  r = await fetch(`${base}/api/tools/save_lead`, {
    method: 'POST',
    duplex: 'half',
    body: new ReadableStream({ start(c) { c.enqueue(big); c.close(); } }),
  });
  assert.equal(r.status, 413);
  r = await fetch(`${base}/api/realtime/session`, { method: 'POST', body: big });
  assert.equal(r.status, 413);
  // A 100 KB webhook passes (limit 256 KB); 300 KB does not.
  r = await fetch(`${base}/api/telnyx/webhooks`, { method: 'POST', body: Buffer.alloc(100 * 1024, 'b') });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).bytes, 100 * 1024);
  r = await fetch(`${base}/api/telnyx/webhooks`, { method: 'POST', body: Buffer.alloc(300 * 1024, 'b') });
  assert.equal(r.status, 413);
  // The limits are exact: 256 KiB passes, one byte more does not (same for 16 KiB on the API).
  r = await fetch(`${base}/api/telnyx/webhooks`, { method: 'POST', body: Buffer.alloc(256 * 1024, 'c') });
  assert.equal(r.status, 200);
  r = await fetch(`${base}/api/telnyx/webhooks`, { method: 'POST', body: Buffer.alloc(256 * 1024 + 1, 'c') });
  assert.equal(r.status, 413);
  r = await fetch(`${base}/api/tools/save_lead`, { method: 'POST', body: Buffer.alloc(16 * 1024, 'd') });
  assert.equal(r.status, 200);
  r = await fetch(`${base}/api/tools/save_lead`, { method: 'POST', body: Buffer.alloc(16 * 1024 + 1, 'd') });
  assert.equal(r.status, 413);
  // The services behind are still in rotation afterwards (no passive health marking).
  r = await fetch(`${base}/api/tools/save_lead`, { method: 'POST', body: '{}' });
  assert.equal(r.status, 200);
});

/** Opens a WebSocket through Caddy, sends one text frame, returns the upstream's echo. */
function wsRoundTrip(path, text) {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('response', (r) => reject(new Error(`no upgrade: HTTP ${r.statusCode}`)));
    req.on('upgrade', (res, socket) => {
      socket.on('data', (d) => {
        resolve({ status: res.statusCode, echo: decodeFrame(d) });
        socket.destroy();
      });
      socket.write(encodeFrame(text, true));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

test('the media WebSocket upgrades through Caddy and frames flow both ways', async () => {
  const { status, echo } = await wsRoundTrip('/media/telnyx?token=one-time-token', '{"event":"connected"}');
  assert.equal(status, 101);
  assert.match(echo, /^media[AB]:\{"event":"connected"\}$/);
  const seen = [...up.mediaA.seen, ...up.mediaB.seen].at(-1);
  assert.equal(seen.url, '/media/telnyx?token=one-time-token', 'the token query reaches the bridge');
  assert.equal(seen.upgrade.toLowerCase(), 'websocket');
});

test('an upstream list spreads requests over every instance (round robin)', async () => {
  const a = up.toolsA.seen.length;
  const b = up.toolsB.seen.length;
  for (let i = 0; i < 6; i++) {
    const r = await fetch(`${base}/api/tools/save_lead`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 200);
  }
  assert.equal(up.toolsA.seen.length - a, 3);
  assert.equal(up.toolsB.seen.length - b, 3);
  const names = new Set();
  for (let i = 0; i < 4; i++) names.add((await wsRoundTrip('/media/telnyx?token=t', 'x')).echo.split(':')[0]);
  assert.deepEqual([...names].sort(), ['mediaA', 'mediaB']);
});

/**
 * A client that stalls: writes `first`, then `trickle` every 200 ms while the socket is open.
 * Resolves with what Caddy answered once Caddy closes the connection; rejects if it is still
 * open after GIVE_UP_MS.
 */
function stall(first, trickle) {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    let answer = '';
    const s = connect(Number(port), '127.0.0.1', () => s.write(first));
    const tick = setInterval(() => { if (!s.destroyed) s.write(trickle); }, 200);
    const giveUp = setTimeout(() => { s.destroy(); reject(new Error(`held open; got ${JSON.stringify(answer)}`)); }, GIVE_UP_MS);
    s.on('data', (d) => { answer += d.toString('latin1'); });
    s.on('error', () => {});
    s.on('close', () => { clearInterval(tick); clearTimeout(giveUp); resolve(answer); });
  });
}

test('request heads sent slowly are cut after read_header, and the site answers meanwhile', async () => {
  const host = new URL(base).host;
  const slow = Array.from({ length: 30 }, () => stall(`GET / HTTP/1.1\r\nHost: ${host}\r\n`, 'X-Slow: 1\r\n'));
  const r = await fetch(`${base}/`);
  assert.equal(r.status, 200, 'a normal visitor is served while the slow heads trickle');
  for (const answer of await Promise.all(slow)) assert.doesNotMatch(answer, /^HTTP\/1\.1 2/, 'never served');
});

test('a trickled request body is cut after read_body and never reaches the service whole', async () => {
  const host = new URL(base).host;
  const before = up.toolsA.seen.length + up.toolsB.seen.length;
  const slow = Array.from({ length: 10 }, () => stall(
    `POST /api/tools/save_lead HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"x":`,
    ' ',
  ));
  const ok = await fetch(`${base}/api/tools/save_lead`, { method: 'POST', body: '{}' });
  assert.equal(ok.status, 200, 'a normal request still gets through');
  // Caddy 2.6 drops the request and closes the connection (after an empty answer of its own,
  // see the Caddyfile); nothing from the service comes back.
  for (const answer of await Promise.all(slow)) assert.doesNotMatch(answer, /upstream/, answer);
  assert.equal(up.toolsA.seen.length + up.toolsB.seen.length, before + 1, 'only the normal request reached tools-svc whole');
});

/** Text frames from a byte stream (unmasked, short: what the stand-in upstream sends). */
function frameReader(socket) {
  let buf = Buffer.alloc(0);
  const waiting = [];
  const frames = [];
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2 && buf.length >= 2 + (buf[1] & 0x7f)) {
      const len = buf[1] & 0x7f;
      frames.push(buf.subarray(2, 2 + len).toString());
      buf = buf.subarray(2 + len);
    }
    while (waiting.length && frames.length) waiting.shift()(frames.shift());
  });
  return () => new Promise((resolve, reject) => {
    if (frames.length) return resolve(frames.shift());
    const t = setTimeout(() => reject(new Error('no frame')), 5000);
    waiting.push((f) => { clearTimeout(t); resolve(f); });
  });
}

test('a media WebSocket outlives read_header and read_body: a call is never cut by them', async () => {
  const { socket } = await new Promise((resolve, reject) => {
    const req = request(`${base}/media/telnyx?token=long-call`, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('response', (r) => reject(new Error(`no upgrade: HTTP ${r.statusCode}`)));
    req.on('upgrade', (res, socket) => resolve({ socket }));
    req.on('error', reject);
    req.end();
  });
  const next = frameReader(socket);
  let closed = false;
  socket.on('close', () => { closed = true; });
  // A conversation longer than both timeouts together: every frame is still echoed.
  const until = Date.now() + READ_HEADER_MS + READ_BODY_MS + 1000;
  let n = 0;
  while (Date.now() < until) {
    socket.write(encodeFrame(`frame ${n}`, true));
    assert.match(await next(), new RegExp(`^media[AB]:frame ${n}$`));
    n += 1;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(closed, false, 'the WebSocket is still open');
  assert.ok(n > 10);
  socket.destroy();
});

