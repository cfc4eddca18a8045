// Every request the voice demo makes goes through `request`, so the page can say which URLs it
// fetched (window.callwayDebug.requests(), read by the browser tests). The list is bounded.
const MAX_LOGGED = 200;
const log = [];

/** fetch() with a timeout (`timeoutMs`), logging the URL first. Rejects like fetch on failure. */
export function request(url, { timeoutMs = 15000, ...init } = {}) {
  log.push(new URL(url, document.baseURI).href);
  if (log.length > MAX_LOGGED) log.shift();
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  return fetch(url, { cache: 'no-store', credentials: 'same-origin', ...init, signal: ctl.signal })
    .finally(() => clearTimeout(timer));
}

/** The URLs requested so far, oldest first (a copy). */
export const requested = () => log.slice();

/** The body as JSON, or null when it is not JSON. */
export async function readJson(resp) {
  try {
    return JSON.parse(await resp.text());
  } catch {
    return null;
  }
}
