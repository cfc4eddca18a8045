// Shared helpers for the browser tests (node --test e2e/). Chromium is Debian's /usr/bin/chromium,
// driven by playwright-core (no browser download).
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const PUBLIC_DIR = join(ROOT, 'public');
export const EXTERNAL_BASE_URL = process.env.CALLWAY_BASE_URL || '';
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const BASE_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage',
];

// ---- fake microphone: a WAV written by the test (440 Hz tone, then silence) -------------------

export function writeToneWav(path, { rate = 48000, toneSec = 1.0, silenceSec = 2.0, freq = 440, amp = 0.4 } = {}) {
  const n = Math.round(rate * (toneSec + silenceSec));
  const toneN = Math.round(rate * toneSec);
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVE', 8);
  buf.write('fmt ', 12);
  buf.writeUInt32LE(16, 16); // PCM chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28); // byte rate
  buf.writeUInt16LE(2, 32); // block align
  buf.writeUInt16LE(16, 34); // bits per sample
  buf.write('data', 36);
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < toneN; i++) {
    const fade = Math.min(1, i / 480, (toneN - i) / 480); // 10 ms fades, no clicks
    buf.writeInt16LE(Math.round(Math.sin((2 * Math.PI * freq * i) / rate) * amp * fade * 32767), 44 + i * 2);
  }
  writeFileSync(path, buf);
  return path;
}

// ---- Chromium -------------------------------------------------------------------------------

/**
 * Launch headless Chromium as root (Playwright gives it a fresh temporary profile) and open one
 * browser context. fakeUi: auto-accept the microphone prompt; fakeDevice: a fake microphone that
 * plays our WAV. contextOptions go to browser.newContext (viewport, isMobile, reducedMotion…).
 */
export async function launchBrowser({ fakeUi = true, fakeDevice = true, args = [], contextOptions = {}, wav: wavOptions = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'callway-e2e-'));
  const wav = writeToneWav(join(dir, 'mic.wav'), wavOptions);
  const flags = [...BASE_FLAGS, ...args];
  if (fakeDevice) flags.push('--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`);
  if (fakeUi) flags.push('--use-fake-ui-for-media-stream');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: flags });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'fr-FR', ...contextOptions });
  return {
    browser,
    context,
    async close() {
      await browser.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Collect console errors, page errors, failed requests and HTTP errors of one page. */
export function watchPage(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`http ${r.status()}: ${r.url()}`); });
  return problems;
}

// ---- TEST-ONLY static server ----------------------------------------------------------------
// Used only by the page-level tests when CALLWAY_BASE_URL is not set: it serves public/ with the
// production CSP and fakes one backend route (POST api/realtime/session refused with `demo_busy`,
// GET without a session token refused with 401). It is NOT the product's server; the full-journey
// tests against the real Rust services set CALLWAY_BASE_URL.

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
  '.json': 'application/json', '.webp': 'image/webp', '.woff2': 'font/woff2',
};
export const TEST_CSP = "default-src 'self'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'";
/** The refusal the static server gives to every POST api/realtime/session, and what the page shows. */
export const SESSION_FAILURE = {
  status: 503,
  body: { error: { code: 'demo_busy', message: 'La démo est très demandée, réessayez dans un instant.' } },
  shown: 'La démo est très demandée, réessayez dans un instant.',
};

function sendJson(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

export async function startStaticServer() {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/api/realtime/session') {
      req.resume();
      if (req.method === 'POST') sendJson(res, SESSION_FAILURE.status, SESSION_FAILURE.body, { 'Retry-After': '5' });
      else if (req.method === 'GET') sendJson(res, 401, { error: { code: 'session_missing', message: 'Session absente.' } });
      else sendJson(res, 405, { error: { code: 'method_not_allowed', message: 'Méthode non autorisée.' } });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    let rel = decodeURIComponent(url.pathname);
    if (rel.endsWith('/')) rel += 'index.html';
    const file = normalize(join(PUBLIC_DIR, rel));
    if (!file.startsWith(PUBLIC_DIR + sep)) {
      res.writeHead(403).end();
      return;
    }
    let body;
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
      body = readFileSync(file);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] || 'application/octet-stream',
      'Content-Length': body.length,
      'Content-Security-Policy': TEST_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(() => ok()); }),
  };
}

/** Base URL of the site under test: CALLWAY_BASE_URL, or a static server started for the test. */
export async function siteUnderTest() {
  if (EXTERNAL_BASE_URL) {
    return { url: EXTERNAL_BASE_URL.endsWith('/') ? EXTERNAL_BASE_URL : `${EXTERNAL_BASE_URL}/`, external: true, close: async () => {} };
  }
  const s = await startStaticServer();
  return { ...s, external: false };
}

export async function waitFor(fn, { timeout = 10000, interval = 50, message = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${message}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Count RTCPeerConnection constructions in the page (window.__peerConnections). */
export async function countPeerConnections(page) {
  await page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.__peerConnections = 0;
    if (!Native) return;
    window.RTCPeerConnection = new Proxy(Native, {
      construct(target, args) {
        window.__peerConnections += 1;
        return Reflect.construct(target, args);
      },
    });
  });
}
