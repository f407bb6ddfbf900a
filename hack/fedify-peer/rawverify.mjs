// The raw RSA-2048 PKCS#1 v1.5 SHA-256 verify on Node, measured the way hack/inboxload
// measures Go's (CPU time of a fixed count, one thread), for the Fedify side of
// hack/load-peer-fedify.sh: once with node:crypto's synchronous verify (OpenSSL), once with
// WebCrypto's crypto.subtle.verify, which Fedify uses (16 in flight, as on 16 connections).
// Prints one JSON line: {"nodeCryptoMicros", "webCryptoMicros", "count"}.
import { createSign, generateKeyPairSync, verify, webcrypto } from "node:crypto";

const count = Number(process.argv[2] ?? 20000);
const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const data = Buffer.from("(request-target): post /inbox\nhost: 127.0.0.62:8090\ndate: Thu, 03 Dec 2026 19:00:00 GMT\ndigest: SHA-256=" + "A".repeat(44));
const sig = createSign("sha256").update(data).sign(privateKey);

function cpuMicros() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

let c0 = cpuMicros();
for (let i = 0; i < count; i++) {
  if (!verify("sha256", data, publicKey, sig)) throw new Error("verify failed");
}
const nodeCrypto = (cpuMicros() - c0) / count;

const key = await webcrypto.subtle.importKey("spki", publicKey.export({ type: "spki", format: "der" }),
  { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"]);
c0 = cpuMicros();
for (let i = 0; i < count; i += 16) {
  const ok = await Promise.all(Array.from({ length: Math.min(16, count - i) },
    () => webcrypto.subtle.verify("RSASSA-PKCS1-v1_5", key, sig, data)));
  if (ok.includes(false)) throw new Error("verify failed");
}
const webCrypto = (cpuMicros() - c0) / count;
console.log(JSON.stringify({ nodeCryptoMicros: Math.round(nodeCrypto * 10) / 10, webCryptoMicros: Math.round(webCrypto * 10) / 10, count }));
