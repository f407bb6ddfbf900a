// A minimal Fedify inbox in Fedify's documented production setup, for measuring side by
// side with Fedforge's (issue 17, hack/load-peer-fedify.sh, docs/benchmarks.md).
//
// What "production setup" means here is what Fedify's deployment guide
// (docs/manual/deploy.md, "Persistent KV store and message queue") names as the default:
// Node.js (the LTS its Dockerfile example uses, node:24), an HTTP adapter
// (@hono/node-server), and PostgreSQL for both the key-value store and the message
// queue (PostgresKvStore + PostgresMessageQueue of @fedify/postgres, on one postgres.js
// pool). The npm registry serves @fedify/postgres only at 1.8.7 (peer dependency
// @fedify/fedify 1.8.7); it is installed beside Fedify 2.3.6 with --legacy-peer-deps
// (package.json, package-lock.json, .npmrc). That the pair works at run time is checked by
// hack/load-peer-fedify.sh: every accepted activity reaches load_received through the
// queue, the queue table empties, and each sender's key is kept once in the store.
//
// The inbox: the shared inbox /inbox and personal inboxes /users/{id}/inbox, one listener
// for every activity type. Fedify verifies the HTTP signature (draft-cavage or RFC 9421)
// against the sender's key (fetched once, then kept in the key-value store), checks that
// the key belongs to the activity's actor, looks the activity's id up in the key-value
// store (idempotence), then, because a queue is configured, INSERTs the activity into the
// queue table and answers 202. The queue worker (in this process: Fedify starts it unless
// manuallyStartQueue) takes each message (DELETE ... RETURNING) and runs the listener,
// which records the activity in the table load_received (one INSERT, like an app that
// keeps what its inbox got), then Fedify marks the id as processed in the key-value store.
//
//   DATABASE_URL=postgres://user:pass@127.0.0.1:5432/db node inbox.mjs \
//     --listen 127.0.0.62:8090 --control 127.0.0.62:8091 [--reset]
//
// DATABASE_URL may also be sqlite:/path/file.db (@fedify/sqlite) or memory (MemoryKvStore
// and no queue, Fedify's development default). --reset empties the received table, the
// queue and the key-value store first.
//
// Its first line on standard output is JSON {"inbox", "control", "pid"}. The control API:
//   GET /_load/stats  {"received": rows in load_received, "queued": rows in the queue
//                      table, "publicKeys": keys kept in the key-value store}
// FEDIFY_LOG_LEVEL (default "warning": no line per activity, as Fedforge logs none).
import { parseArgs } from "node:util";
import http from "node:http";
import { AsyncLocalStorage } from "node:async_hooks";
import { configure, getConsoleSink } from "@logtape/logtape";
import { createFederation } from "@fedify/fedify";
import { Activity } from "@fedify/fedify/vocab";
import { PostgresKvStore, PostgresMessageQueue } from "@fedify/postgres";
import { serve } from "@hono/node-server";
import postgres from "postgres";

const { values: opts } = parseArgs({
  options: {
    listen: { type: "string", default: "127.0.0.62:8090" },
    control: { type: "string", default: "127.0.0.62:8091" },
    database: { type: "string", default: process.env.DATABASE_URL ?? "" },
    pool: { type: "string", default: "10" },
    reset: { type: "boolean", default: false },
  },
});
if (!opts.database) throw new Error("DATABASE_URL (or --database) postgres://... is required");

await configure({
  contextLocalStorage: new AsyncLocalStorage(),
  sinks: { console: getConsoleSink() },
  loggers: [
    { category: "fedify", lowestLevel: process.env.FEDIFY_LOG_LEVEL ?? "warning", sinks: ["console"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
  ],
});

const backend = opts.database === "memory"
  ? await memoryBackend()
  : opts.database.startsWith("sqlite:")
  ? await sqliteBackend(opts.database.slice("sqlite:".length))
  : await postgresBackend(opts.database);
if (opts.reset) await backend.reset();
const { kv, queue } = backend;

const federation = createFederation({
  kv,
  queue,
  // The load tool's sender actors are on loopback.
  allowPrivateAddress: true,
  skipSignatureVerification: false,
});

federation.setActorDispatcher("/users/{identifier}", () => null);
federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Activity, async (ctx, activity) => {
    // The payload as received: Fedify keeps it on the context (an internal field of its
    // InboxContextImpl, used for forwarding); JSON-LD output of the parsed object otherwise.
    const json = ctx.activity ?? (await activity.toJsonLd());
    await backend.record(activity.id?.href ?? crypto.randomUUID(), activity.actorId?.href ?? "", json);
  })
  .onError((_ctx, error) => {
    console.error("inbox listener failed:", error);
  });

function hostPort(address) {
  const i = address.lastIndexOf(":");
  return { hostname: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

const fed = hostPort(opts.listen);
await new Promise((resolve, reject) => {
  const server = serve({ fetch: (request) => federation.fetch(request, { contextData: undefined }), ...fed }, resolve);
  server.once("error", reject);
});

const control = http.createServer(async (req, res) => {
  try {
    if (req.method !== "GET" || req.url !== "/_load/stats") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(await backend.stats()));
  } catch (error) {
    res.writeHead(500).end(String(error));
  }
});
const ctl = hostPort(opts.control);
await new Promise((resolve, reject) => {
  control.once("error", reject);
  control.listen(ctl.port, ctl.hostname, resolve);
});

console.log(JSON.stringify({ inbox: `http://${opts.listen}/inbox`, control: `http://${opts.control}`, pid: process.pid }));
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, async () => {
    await backend.close();
    process.exit(0);
  });
}

// postgresBackend is the deployment guide's default: PostgreSQL for the key-value store,
// the queue and the app's own table, on one postgres.js pool (its default of 10
// connections; the queue's LISTEN takes one more).
async function postgresBackend(url) {
  const { PostgresKvStore, PostgresMessageQueue } = await import("@fedify/postgres");
  const { default: postgres } = await import("postgres");
  const sql = postgres(url, { max: Number(opts.pool), onnotice: () => {} });
  await sql`CREATE TABLE IF NOT EXISTS load_received (
    id text PRIMARY KEY, actor text NOT NULL, activity jsonb NOT NULL,
    received timestamptz NOT NULL DEFAULT now())`;
  const kv = new PostgresKvStore(sql);
  const queue = new PostgresMessageQueue(sql);
  await kv.initialize();
  await queue.initialize();
  return {
    kv, queue,
    record: (id, actor, json) => sql`INSERT INTO load_received (id, actor, activity)
      VALUES (${id}, ${actor}, ${sql.json(json)}) ON CONFLICT (id) DO NOTHING`,
    reset: () => sql`TRUNCATE load_received, fedify_message_v2, fedify_kv_v2`,
    stats: async () => {
      const [{ received }] = await sql`SELECT count(*)::int AS received FROM load_received`;
      const [{ queued }] = await sql`SELECT count(*)::int AS queued FROM fedify_message_v2`;
      const [{ keys }] = await sql`SELECT count(*)::int AS keys FROM fedify_kv_v2 WHERE key[2] = 'publicKey'`;
      return { received, queued, publicKeys: keys };
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

// sqliteBackend is the guide's single-node choice: SqliteKvStore + SqliteMessageQueue of
// @fedify/sqlite (served only as 2.0.0-dev.279 for Fedify 2) on node:sqlite, one database
// file in WAL mode with SQLite's default synchronous=FULL (each commit synced).
async function sqliteBackend(path) {
  const { SqliteKvStore, SqliteMessageQueue } = await import("@fedify/sqlite");
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000");
  db.exec(`CREATE TABLE IF NOT EXISTS load_received (
    id TEXT PRIMARY KEY, actor TEXT NOT NULL, activity TEXT NOT NULL, received INTEGER NOT NULL)`);
  const kv = new SqliteKvStore(db);
  const queue = new SqliteMessageQueue(db);
  kv.initialize();
  queue.initialize();
  const insert = db.prepare("INSERT OR IGNORE INTO load_received (id, actor, activity, received) VALUES (?, ?, ?, ?)");
  const count = (q) => db.prepare(q).get().n;
  return {
    kv, queue,
    record: async (id, actor, json) => insert.run(id, actor, JSON.stringify(json), Date.now()),
    reset: async () => db.exec("DELETE FROM load_received; DELETE FROM fedify_message; DELETE FROM fedify_kv"),
    stats: async () => ({
      received: count("SELECT count(*) AS n FROM load_received"),
      queued: count("SELECT count(*) AS n FROM fedify_message"),
      publicKeys: count(`SELECT count(*) AS n FROM fedify_kv WHERE key LIKE '["_fedify","publicKey"%'`),
    }),
    close: async () => db.close(),
  };
}

// memoryBackend is Fedify's development default, for comparison only: MemoryKvStore and no
// queue (the listener runs before the 202; nothing survives a restart).
async function memoryBackend() {
  const { MemoryKvStore } = await import("@fedify/fedify");
  const kv = new MemoryKvStore();
  const received = new Map();
  return {
    kv, queue: undefined,
    record: async (id, actor, json) => void received.set(id, { actor, json }),
    reset: async () => received.clear(),
    stats: async () => ({ received: received.size, queued: 0, publicKeys: -1 }),
    close: async () => {},
  };
}
