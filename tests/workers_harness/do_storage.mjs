// Durable Object storage for one object: an in-memory SQLite database (sql.js, pure wasm, so no
// native build on Node 20) exposed with workerd's API shapes — synchronous `sql.exec` returning a
// cursor, `transactionSync`, the async KV API (kept in a hidden `_cf_KV` table like workerd's
// SQLite-backed objects) and alarms. Class names matter: the SDK wraps `ctx.storage` only if its
// constructor is named `DurableObjectStorage`.
import { createRequire } from 'node:module';
import v8 from 'node:v8';

const require = createRequire(import.meta.url);
let sqlModulePromise;

/** sql.js must be initialised (async) once before any storage is created. */
export function initSql() {
  sqlModulePromise ??= require('sql.js')();
  return sqlModulePromise;
}

// workerd returns BLOBs as ArrayBuffer; sql.js gives Uint8Array.
function fromSqlite(v) {
  if (v instanceof Uint8Array) return v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength);
  return v;
}

function toSqlite(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'number' || typeof v === 'string') return v;
  throw new TypeError(`Unsupported SQL binding value of type ${v?.constructor?.name ?? typeof v}`);
}

/** Result of `sql.exec`. Rows are read eagerly (workerd steps lazily; results are the same). */
export class SqlStorageCursor {
  #rows;
  #pos = 0;
  constructor(columnNames, rows, rowsRead, rowsWritten) {
    this.columnNames = columnNames;
    this.#rows = rows;
    this.rowsRead = rowsRead;
    this.rowsWritten = rowsWritten;
  }
  #obj(row) {
    const o = {};
    this.columnNames.forEach((c, i) => { o[c] = row[i]; });
    return o;
  }
  next() {
    if (this.#pos >= this.#rows.length) return { done: true, value: undefined };
    return { done: false, value: this.#obj(this.#rows[this.#pos++]) };
  }
  toArray() {
    const out = [];
    for (let r = this.next(); !r.done; r = this.next()) out.push(r.value);
    return out;
  }
  one() {
    const remaining = this.#rows.length - this.#pos;
    if (remaining === 0) throw new Error('Expected exactly one result from SQL query, but got no results.');
    if (remaining > 1) throw new Error('Expected exactly one result from SQL query, but got multiple results.');
    return this.next().value;
  }
  raw() {
    const rows = this.#rows;
    const self = this;
    const it = {
      next() {
        if (self.#pos >= rows.length) return { done: true, value: undefined };
        return { done: false, value: rows[self.#pos++].slice() };
      },
      toArray() {
        const out = [];
        for (let r = it.next(); !r.done; r = it.next()) out.push(r.value);
        return out;
      },
      [Symbol.iterator]() { return it; },
    };
    return it;
  }
  [Symbol.iterator]() { return this; }
}

export class SqlStorage {
  #db;
  constructor(db) { this.#db = db; }
  exec(query, ...bindings) {
    const db = this.#db;
    const params = bindings.map(toSqlite);
    let columnNames = [];
    let rows = [];
    let rowsRead = 0;
    let rowsWritten = 0;
    // sql.js frees each statement when the iterator advances, so handle them one at a time.
    // Bindings go to the first statement that has parameters to take.
    let count = 0;
    let bound = params.length === 0;
    for (const stmt of db.iterateStatements(query)) {
      count++;
      try {
        if (!bound && stmt.getSQL().includes('?')) { stmt.bind(params); bound = true; }
        const cur = [];
        while (stmt.step()) cur.push(stmt.get().map(fromSqlite));
        rowsRead += cur.length;
        if (!/^\s*(select|with\s[\s\S]*\bselect\b|pragma)/i.test(stmt.getSQL())) rowsWritten += db.getRowsModified();
        columnNames = stmt.getColumnNames();
        rows = cur;
      } finally {
        stmt.free();
      }
    }
    if (count === 0) throw new Error('SQL query contained no statements.');
    if (!bound) throw new RangeError('Wrong number of parameter bindings for SQL query.');
    return new SqlStorageCursor(columnNames, rows, rowsRead, rowsWritten);
  }
  get databaseSize() {
    const page = this.#db.exec('PRAGMA page_count; PRAGMA page_size');
    return page[0].values[0][0] * page[1].values[0][0];
  }
}

const KV_TABLE = '_cf_KV';

export class DurableObjectStorage {
  #db;
  #alarm = null;
  #alarmTimer = null;
  #onAlarm;
  #txDepth = 0;
  constructor(SQL, onAlarm) {
    this.#db = new SQL.Database();
    this.#onAlarm = onAlarm;
    this.#db.run(`CREATE TABLE IF NOT EXISTS ${KV_TABLE} (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID`);
    this.sql = new SqlStorage(this.#db);
  }

  /** Synchronous transaction: commit if fn returns, roll back and rethrow if it throws. */
  transactionSync(fn) {
    // Nested calls become savepoints, as in workerd.
    const name = `tx${this.#txDepth}`;
    const outer = this.#txDepth === 0;
    this.#db.run(outer ? 'BEGIN' : `SAVEPOINT ${name}`);
    this.#txDepth++;
    try {
      const result = fn();
      this.#txDepth--;
      this.#db.run(outer ? 'COMMIT' : `RELEASE ${name}`);
      return result;
    } catch (err) {
      this.#txDepth--;
      this.#db.run(outer ? 'ROLLBACK' : `ROLLBACK TO ${name}; RELEASE ${name}`);
      throw err;
    }
  }

  async transaction(fn) {
    // Async variant: a single in-memory object has no concurrent writers to isolate from.
    return fn(this);
  }

  // --- async KV API (values are structured-cloned like workerd, via v8.serialize) ---
  #getOne(key) {
    const stmt = this.#db.prepare(`SELECT value FROM ${KV_TABLE} WHERE key = ?`);
    try {
      stmt.bind([String(key)]);
      return stmt.step() ? v8.deserialize(Buffer.from(stmt.get()[0])) : undefined;
    } finally { stmt.free(); }
  }
  async get(keys) {
    if (Array.isArray(keys)) {
      const m = new Map();
      for (const k of keys) { const v = this.#getOne(k); if (v !== undefined) m.set(k, v); }
      return m;
    }
    return this.#getOne(keys);
  }
  async put(keyOrEntries, value) {
    const entries = typeof keyOrEntries === 'string' ? [[keyOrEntries, value]] : Object.entries(keyOrEntries);
    for (const [k, v] of entries) {
      this.#db.run(`INSERT OR REPLACE INTO ${KV_TABLE} (key, value) VALUES (?, ?)`, [k, new Uint8Array(v8.serialize(v))]);
    }
  }
  async delete(keys) {
    const list = Array.isArray(keys) ? keys : [keys];
    let n = 0;
    for (const k of list) {
      this.#db.run(`DELETE FROM ${KV_TABLE} WHERE key = ?`, [String(k)]);
      n += this.#db.getRowsModified();
    }
    return Array.isArray(keys) ? n : n > 0;
  }
  async list(options = {}) {
    const { prefix, start, startAfter, end, limit, reverse } = options ?? {};
    const where = [];
    const params = [];
    if (prefix != null) { where.push('substr(key, 1, ?) = ?'); params.push(prefix.length, prefix); }
    if (start != null) { where.push('key >= ?'); params.push(start); }
    if (startAfter != null) { where.push('key > ?'); params.push(startAfter); }
    if (end != null) { where.push('key < ?'); params.push(end); }
    let q = `SELECT key, value FROM ${KV_TABLE}`;
    if (where.length) q += ` WHERE ${where.join(' AND ')}`;
    q += ` ORDER BY key ${reverse ? 'DESC' : 'ASC'}`;
    if (limit != null) { q += ' LIMIT ?'; params.push(limit); }
    const m = new Map();
    const stmt = this.#db.prepare(q);
    try {
      stmt.bind(params);
      while (stmt.step()) { const [k, v] = stmt.get(); m.set(k, v8.deserialize(Buffer.from(v))); }
    } finally { stmt.free(); }
    return m;
  }
  async deleteAll() {
    const tables = this.#db.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
    for (const [name] of tables[0]?.values ?? []) this.#db.run(`DROP TABLE "${name}"`);
    this.#db.run(`CREATE TABLE IF NOT EXISTS ${KV_TABLE} (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID`);
    await this.deleteAlarm();
  }

  // --- alarms: a setTimeout per object; workerd's retries/persistence are not emulated ---
  async getAlarm() { return this.#alarm; }
  async setAlarm(when) {
    const at = when instanceof Date ? when.getTime() : Number(when);
    this.#alarm = at;
    clearTimeout(this.#alarmTimer);
    this.#alarmTimer = setTimeout(() => {
      this.#alarm = null;
      this.#alarmTimer = null;
      Promise.resolve(this.#onAlarm?.({ retryCount: 0, isRetry: false })).catch((err) => {
        process.stderr.write(`[harness] alarm handler failed: ${err?.stack ?? err}\n`);
      });
    }, Math.max(0, at - Date.now()));
    this.#alarmTimer.unref?.();
  }
  async deleteAlarm() {
    clearTimeout(this.#alarmTimer);
    this.#alarm = null;
    this.#alarmTimer = null;
  }
  async sync() {}

  close() {
    clearTimeout(this.#alarmTimer);
    this.#db.close();
  }
}
