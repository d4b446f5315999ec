// Node http <-> WHATWG fetch types, the way workerd's front door would hand a request to a worker.
import { Readable } from 'node:stream';

export const DEFAULT_CF = Object.freeze({ country: 'XX', colo: 'LOCAL', asn: 0 });

/** IncomingMessage -> Request: raw headers kept (repeats included), body streamed, cf attached. */
export function toWebRequest(req, { cf = DEFAULT_CF, origin } = {}) {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.startsWith(':')) continue;  // HTTP/2 pseudo-headers
    headers.append(name, raw[i + 1]);
  }
  if (!headers.has('cf-connecting-ip') && req.socket?.remoteAddress) {
    headers.set('cf-connecting-ip', req.socket.remoteAddress.replace(/^::ffff:/, ''));
  }
  const method = req.method ?? 'GET';
  const hasBody = !['GET', 'HEAD'].includes(method);
  const url = new URL(req.url ?? '/', origin ?? `http://${req.headers.host ?? '127.0.0.1'}`);
  const request = new Request(url, {
    method,
    headers,
    body: hasBody ? Readable.toWeb(req) : undefined,
    duplex: 'half',
  });
  Object.defineProperty(request, 'cf', { value: { ...cf }, enumerable: true, configurable: true });
  return request;
}

/** Response -> ServerResponse: every Set-Cookie kept separately, body streamed. */
export async function sendWebResponse(res, response) {
  const headers = {};
  for (const [k, v] of response.headers) {
    if (k === 'set-cookie') continue;
    headers[k] = v;
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length) headers['set-cookie'] = cookies;
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (!response.body) { res.end(); return; }
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise((r) => res.once('drain', r));
    }
  } finally {
    res.end();
  }
}
