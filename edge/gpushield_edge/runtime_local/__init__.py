"""CPython implementations of the gate ports: httpx, sqlite3, asyncio."""
