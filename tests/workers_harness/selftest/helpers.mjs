// Shared helpers for the self-tests.
import http from 'node:http';

/** A local upstream: /ok answers at once, /slow?ms=N after N ms. */
export async function startUpstream() {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://up');
    const reply = () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`upstream:${u.pathname}`);
    if (u.pathname === '/slow') setTimeout(reply, Number(u.searchParams.get('ms') ?? 1000));
    else if (u.pathname === '/count') {
      let n = 0;
      req.on('data', (c) => { n += c.length; });
      req.on('end', () => res.writeHead(200).end(`${req.method} ${n} bytes`));
    }
    else reply();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => { server.closeAllConnections(); server.close(); } };
}

export async function get(worker, path, init, cf = { colo: 'LOCAL', country: 'XX', asn: 0 }) {
  const { response, waitUntil } = await worker.fetch(new Request(`http://worker.test${path}`, init), cf);
  const text = await response.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, headers: response.headers, text, json, waitUntil };
}

export const timeout = (ms) => new Promise((r) => setTimeout(() => r('timeout'), ms));

/** Polls `probe` until it returns a truthy value (returned), or throws after `ms`. */
export async function until(probe, what, ms = 10_000) {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
