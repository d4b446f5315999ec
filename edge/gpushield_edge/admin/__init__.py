"""Key administration: one interface, whether the keys live in a local sqlite file or in
Durable Objects at the edge, and whether the caller is the CLI on the same machine or an
operator talking to a deployed gate over the signed admin API."""
