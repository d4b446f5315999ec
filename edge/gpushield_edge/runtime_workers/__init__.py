"""The gate's ports on Cloudflare Workers (Pyodide): js.fetch, WebCrypto, Durable Objects,
ctx.waitUntil, console logs. Imported only inside a Worker; CPython never loads it."""
