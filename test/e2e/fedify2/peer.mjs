// A second independent ActivityPub peer for Fedforge's end-to-end suite (scenario 7), written
// with the current Fedify 2.x (npm @fedify/fedify 2.3.6, pinned in package.json; Node 22 or
// newer). It is test/e2e/fedify/peer.mjs (Fedify 1.5.9) ported to Fedify 2: the vocabulary
// comes from @fedify/fedify/vocab, and what 2.x does differently is what this peer is for:
// it signs its requests with RFC 9421 first (Fedify's firstKnock default) and double-knocks
// to draft-cavage when refused, and its inbox answers a failed signature with 401 and an
// Accept-Signature challenge (inboxChallengePolicy). Fedify signs HTTP requests with its RSA
// key only (its signRequest takes RSASSA-PKCS1-v1_5 keys); the Ed25519 key is published as a
// Multikey, as Fedify apps do. It runs on the host, outside the cluster,
// has one actor with its own RSA and Ed25519 key pairs, and keeps every activity its inbox
// accepted. Fedify verifies each incoming activity before an inbox listener runs (an HTTP
// signature checked against the sender's key, which must belong to the activity's actor;
// skipSignatureVerification stays false), so whatever is recorded here was verified by
// Fedify, not by Fedforge.
//
//   node peer.mjs --listen 10.244.0.1:0 --control 127.0.0.1:0 \
//     --resolve forge-server.ns.svc.cluster.local=10.96.0.12
//
// --listen      where the federation side listens (peers in the cluster must reach it);
//               port 0 picks a free port
// --control     where the test's control API listens (loopback)
// --resolve     NAME=IP, repeatable: names this process connects to at IP (the host cannot
//               resolve the cluster's Service names; the URL, the Host header and so the
//               signatures keep the name)
// --user        the actor's identifier (default "peer")
// FEDIFY_LOG_LEVEL=debug shows Fedify's verification steps (default info).
//
// Its first line on standard output is JSON: {"actor", "origin", "control"}. Logs go to
// standard error. The control API (JSON):
//   GET  /_test/received            every activity the inbox accepted, oldest first
//   GET  /_test/refused             every POST answered with an error (4xx, 5xx)
//   POST /_test/follow   {target}   looks the actor up by its URL and sends it a Follow
//   POST /_test/unfollow {target}   sends Undo(Follow) for the last Follow to target
//   POST /_test/offer {target, name, markdown}
//                                   sends Offer{Ticket} (ForgeFed: opening a ticket) to the
//                                   Repository actor target; Fedify's vocabulary has no
//                                   Ticket, so the JSON is written here and signed with
//                                   Fedify's signRequest (RFC 9421, the actor's RSA key)
import dns from "node:dns";
import http from "node:http";
import { parseArgs } from "node:util";
import { randomUUID } from "node:crypto";
import { AsyncLocalStorage } from "node:async_hooks";
import { Agent, setGlobalDispatcher } from "undici";
import { configure, getConsoleSink } from "@logtape/logtape";
import { MemoryKvStore, createFederation, generateCryptoKeyPair, signRequest } from "@fedify/fedify";
import { Accept, Activity, Create, Endpoints, Follow, Person, Reject, Undo, isActor } from "@fedify/fedify/vocab";

const { values: opts } = parseArgs({
  options: {
    listen: { type: "string", default: "127.0.0.1:0" },
    control: { type: "string", default: "127.0.0.1:0" },
    resolve: { type: "string", multiple: true, default: [] },
    user: { type: "string", default: "peer" },
  },
});

// Name resolution: Node's fetch (undici) resolves with the system resolver, which does not
// know the cluster's names. Connections to the mapped names go to the given addresses.
const hosts = new Map();
for (const r of opts.resolve) {
  const i = r.indexOf("=");
  if (i <= 0) throw new Error(`--resolve ${r}: want NAME=IP`);
  hosts.set(r.slice(0, i).toLowerCase(), r.slice(i + 1));
}
function lookup(hostname, options, callback) {
  const ip = hosts.get(String(hostname).toLowerCase());
  if (ip == null) return dns.lookup(hostname, options, callback);
  const family = ip.includes(":") ? 6 : 4;
  if (options?.all) return callback(null, [{ address: ip, family }]);
  return callback(null, ip, family);
}
setGlobalDispatcher(new Agent({ connect: { lookup } }));

await configure({
  contextLocalStorage: new AsyncLocalStorage(),
  sinks: { console: getConsoleSink() },
  loggers: [
    { category: "fedify", lowestLevel: process.env.FEDIFY_LOG_LEVEL ?? "info", sinks: ["console"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
  ],
});
// The console sink writes to console.*; keep standard output for the ready line.
for (const level of ["debug", "info", "log", "warn"]) console[level] = console.error;

const user = opts.user;
const keyPairs = [
  await generateCryptoKeyPair("RSASSA-PKCS1-v1_5"),
  await generateCryptoKeyPair("Ed25519"),
];

const federation = createFederation({
  kv: new MemoryKvStore(),
  // Fedforge and this peer are on private addresses (the cluster's and the host's).
  allowPrivateAddress: true,
  skipSignatureVerification: false,
  // RFC 9421 first (the default, written out): Fedforge must take it or make Fedify knock twice.
  firstKnock: "rfc9421",
  // A refused signature gets 401 with Accept-Signature (RFC 9421 section 5.1).
  inboxChallengePolicy: { enabled: true },
  // Fedify's own loader, which serves the contexts it ships and fetches the rest: Fedforge's
  // documents name only shipped contexts (AS2 and the security ones) and define the
  // ForgeFed and Mastodon terms inline, so nothing is fetched, and a document naming any
  // other context would fail here, as this machine reaches nothing outside.
});

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== user) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify 2 peer",
      summary: "An independent ActivityPub peer of the Fedforge e2e suite.",
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) => (identifier === user ? keyPairs : []));

// received holds what the inbox accepted, refused the POSTs it answered with an error, for
// the test to read.
const received = [];
const refused = [];

async function record(ctx, activity) {
  const rec = {
    type: activity.constructor.name,
    id: activity.id?.href ?? null,
    actor: activity.actorId?.href ?? null,
    object: activity.objectId?.href ?? null,
    result: activity.resultId?.href ?? null,
    inReplyTo: null,
    objectType: null,
    content: null,
    urls: [],
    receivedAt: new Date().toISOString(),
  };
  try {
    const object = await activity.getObject();
    if (object != null) {
      rec.object = object.id?.href ?? rec.object;
      rec.objectType = object.constructor.name;
      if ("content" in object && object.content != null) rec.content = String(object.content);
      if ("replyTargetId" in object) rec.inReplyTo = object.replyTargetId?.href ?? null;
      if ("urls" in object) {
        for (const u of object.urls) rec.urls.push(u instanceof URL ? u.href : u.href?.href ?? null);
      }
      if (object instanceof Activity) {
        rec.objectObject = object.objectId?.href ?? null;
        rec.objectActor = object.actorId?.href ?? null;
      }
    }
  } catch (error) {
    rec.objectError = String(error);
  }
  rec.json = await activity.toJsonLd({ contextLoader: ctx.contextLoader, format: "compact" });
  received.push(rec);
  console.error(`peer: received ${rec.type} ${rec.id} from ${rec.actor} (object ${rec.object})`);
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Accept, record)
  .on(Reject, record)
  .on(Create, record)
  .on(Undo, record)
  .on(Activity, record)
  .onError((_ctx, error) => console.error("peer: inbox error:", error));

// follows remembers the last Follow sent to each target actor, for Undo.
const follows = new Map();
// sentFollows serves the Follows this peer sent at their ids: Fedify 2 does not trust an
// object embedded in an activity from another origin (Fedforge's Accept embeds the peer's
// Follow) and dereferences it, as it would on any server.
const sentFollows = new Map();
federation.setObjectDispatcher(Follow, "/follows/{id}", (_ctx, values) => sentFollows.get(values.id) ?? null);

async function follow(ctx, targetURL) {
  const target = await ctx.lookupObject(targetURL);
  if (!isActor(target)) throw new Error(`${targetURL} is not an actor: ${target?.constructor.name}`);
  const uuid = randomUUID();
  const activity = new Follow({
    id: ctx.getObjectUri(Follow, { id: uuid }),
    actor: ctx.getActorUri(user),
    object: target.id,
    to: target.id,
  });
  sentFollows.set(uuid, activity);
  await ctx.sendActivity({ identifier: user }, target, activity, { immediate: true });
  follows.set(target.id.href, { target, activity });
  return { follow: activity.id.href, target: target.id.href, inbox: target.inboxId?.href };
}

async function unfollow(ctx, targetURL) {
  const f = follows.get(targetURL);
  if (f == null) throw new Error(`no Follow was sent to ${targetURL}`);
  const activity = new Undo({
    id: new URL(`/follows/${randomUUID()}/undo`, ctx.origin),
    actor: ctx.getActorUri(user),
    object: f.activity,
    to: f.target.id,
  });
  await ctx.sendActivity({ identifier: user }, f.target, activity, { immediate: true });
  follows.delete(targetURL);
  return { undo: activity.id.href, follow: f.activity.id.href };
}

// sentOffers serves the Offers this peer sent at their ids (Fedify dereferences the object
// of the Accept it receives), as JSON written here: Fedify has no Ticket class.
const sentOffers = new Map();

async function offer(ctx, targetURL, name, markdown) {
  const target = await ctx.lookupObject(targetURL);
  if (!isActor(target)) throw new Error(`${targetURL} is not an actor: ${target?.constructor.name}`);
  const actor = ctx.getActorUri(user).href;
  const id = new URL(`/offers/${randomUUID()}`, ctx.origin).href;
  const doc = {
    "@context": ["https://www.w3.org/ns/activitystreams", { forge: "https://forgefed.org/ns#", Ticket: "forge:Ticket" }],
    id, type: "Offer", actor, target: target.id.href, to: [target.id.href],
    object: {
      id: `${id}#ticket`, type: "Ticket", attributedTo: actor, name,
      content: `<p>${markdown.replace(/[<>&]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;" })[c])}</p>`,
      mediaType: "text/html", source: { content: markdown, mediaType: "text/markdown" },
    },
  };
  sentOffers.set(new URL(id).pathname, doc);
  const [key] = await ctx.getActorKeyPairs(user);
  const body = JSON.stringify(doc);
  const request = await signRequest(
    new Request(target.inboxId, { method: "POST", headers: { "Content-Type": "application/activity+json" }, body }),
    key.privateKey, key.keyId, { spec: "rfc9421" },
  );
  const response = await fetch(request);
  return { offer: id, target: target.id.href, inbox: target.inboxId?.href, status: response.status, answer: await response.text() };
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks);
}

function send(res, status, body) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

function listen(server, address) {
  const i = address.lastIndexOf(":");
  const host = address.slice(0, i).replace(/^\[|\]$/g, "");
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(address.slice(i + 1)), host, () => {
      const a = server.address();
      resolve(a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    });
  });
}

// The federation side: Node's request in, a fetch Request to Fedify, its Response out.
const fedServer = http.createServer(async (req, res) => {
  try {
    const sent = req.method === "GET" ? sentOffers.get(new URL(req.url, "http://peer").pathname) : undefined;
    if (sent !== undefined) {
      res.writeHead(200, { "Content-Type": "application/activity+json" });
      return res.end(JSON.stringify(sent));
    }
    const body = await readBody(req);
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
    const request = new Request(new URL(req.url, `http://${req.headers.host}`), {
      method: req.method,
      headers,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
    });
    const response = await federation.fetch(request, { contextData: undefined });
    console.error(`peer: ${req.method} ${req.url} -> ${response.status}`);
    if (req.method === "POST" && response.status >= 400) {
      refused.push({
        path: req.url,
        status: response.status,
        answer: await response.clone().text(),
        signature: req.headers.signature ?? null,
        body: body.toString(),
      });
    }
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    console.error(`peer: ${req.method} ${req.url}:`, error);
    if (!res.headersSent) send(res, 500, { error: String(error) });
    else res.end();
  }
});

const origin = `http://${await listen(fedServer, opts.listen)}`;

const controlServer = http.createServer(async (req, res) => {
  try {
    const ctx = federation.createContext(new URL(origin), undefined);
    const path = new URL(req.url, "http://control").pathname;
    if (req.method === "GET" && path === "/_test/received") return send(res, 200, received);
    if (req.method === "GET" && path === "/_test/refused") return send(res, 200, refused);
    if (req.method === "POST" && (path === "/_test/follow" || path === "/_test/unfollow")) {
      const { target } = JSON.parse((await readBody(req)).toString() || "{}");
      if (typeof target !== "string") return send(res, 400, { error: "want {\"target\": URL}" });
      const out = path === "/_test/follow" ? await follow(ctx, target) : await unfollow(ctx, target);
      return send(res, 200, out);
    }
    if (req.method === "POST" && path === "/_test/offer") {
      const { target, name, markdown } = JSON.parse((await readBody(req)).toString() || "{}");
      if (typeof target !== "string" || typeof name !== "string" || typeof markdown !== "string") {
        return send(res, 400, { error: "want {\"target\", \"name\", \"markdown\"}" });
      }
      return send(res, 200, await offer(ctx, target, name, markdown));
    }
    send(res, 404, { error: `no ${req.method} ${path}` });
  } catch (error) {
    console.error(`peer: control ${req.method} ${req.url}:`, error);
    send(res, 502, { error: String(error?.stack ?? error) });
  }
});
const control = `http://${await listen(controlServer, opts.control)}`;

const ctx = federation.createContext(new URL(origin), undefined);
process.stdout.write(JSON.stringify({ actor: ctx.getActorUri(user).href, origin, control }) + "\n");

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    fedServer.close();
    controlServer.close();
    process.exit(0);
  });
}
