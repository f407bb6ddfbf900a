package app

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// The hostile-request suite's generator (issue 20). A hostile request is either an HTTP
// request (sent through net/http) or raw bytes for one TCP connection (transport abuse
// that net/http's client would not send). Every one must be refused: no 2xx.

// world is what the generator signs with and points at: the instance under attack
// (alpha), an honest peer (beta's watcher, whose key the suite also uses for correctly
// signed hostile bodies) and an attacker's host (evil) that serves what it likes.
type world struct {
	alpha        instance
	alphaID      string // alpha's local actor
	watcherID    string // beta's actor
	watcherKey   crypto.Signer
	evilBase     string // http://evil.fedforge.test:port
	malloryID    string // the attacker's own actor on evil
	malloryKey   crypto.Signer
	victimID     string // another actor on evil, whose key the attacker does not hold
	thirdHostKey string // a keyId of a host that is neither ours nor evil's
}

// hostile is one generated request.
type hostile struct {
	class, name string
	// HTTP request (when raw is empty)
	method, path string
	header       http.Header
	body         []byte
	// raw bytes for one TCP connection
	raw string
}

func rsaKey(t *testing.T) (crypto.Signer, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	must(t, err)
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// evilDocs are the documents the attacker's host serves: its own actor, a victim actor
// on the same host, and an uploaded file that claims to be the victim and lists the
// attacker's key (issue 20, first attack).
func evilDocs(t *testing.T, w *world, malloryPEM, victimPEM string) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{}
	put := func(path string, v any) {
		b, err := json.Marshal(v)
		must(t, err)
		docs[path] = b
	}
	put("/users/mallory", activitypub.NewActor(activitypub.ActorSpec{ID: w.malloryID, Types: []string{activitypub.TypePerson}, PreferredUsername: "mallory", Inbox: w.malloryID + "/inbox", RSAPublicKeyPEM: malloryPEM}))
	put("/users/victim", activitypub.NewActor(activitypub.ActorSpec{ID: w.victimID, Types: []string{activitypub.TypePerson}, PreferredUsername: "victim", Inbox: w.victimID + "/inbox", RSAPublicKeyPEM: victimPEM}))
	liar := activitypub.NewActor(activitypub.ActorSpec{ID: w.victimID, Types: []string{activitypub.TypePerson}, PreferredUsername: "victim", Inbox: w.victimID + "/inbox", RSAPublicKeyPEM: malloryPEM})
	liar.PublicKey[0].ID = w.evilBase + "/uploads/liar.json#main-key"
	put("/uploads/liar.json", liar)
	return docs
}

// malloryUpdate is an Update of mallory's own document listing, beside its own key,
// keys under other documents: issue 20's second attack.
func malloryUpdate(w *world, id, malloryPEM string, plantedKeyIDs ...string) []byte {
	doc := activitypub.NewActor(activitypub.ActorSpec{ID: w.malloryID, Types: []string{activitypub.TypePerson}, PreferredUsername: "mallory", Inbox: w.malloryID + "/inbox", RSAPublicKeyPEM: malloryPEM})
	for _, k := range plantedKeyIDs {
		doc.PublicKey = append(doc.PublicKey, activitypub.PublicKey{ID: k, Owner: w.malloryID, PublicKeyPem: malloryPEM})
	}
	upd := map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "id": id, "type": "Update", "actor": w.malloryID, "object": doc}
	b, _ := json.Marshal(upd)
	return b
}

// signAt signs req (its Host already set) with key under keyID at time at, draft-cavage.
func signAt(req *http.Request, body []byte, key crypto.Signer, keyID string, at time.Time, headers ...string) error {
	return activitypub.SignCavage(req, body, key, keyID, activitypub.CavageOptions{Now: at, Headers: headers})
}

// generator builds hostile requests class by class from a seeded source, so a failing
// run can be repeated.
type generator struct {
	w          *world
	rng        *mrand.Rand
	n          int
	malloryPEM string
	replays    []hostile // accepted good requests, to be replayed byte for byte
}

const ctAS = "application/activity+json"

func (g *generator) id(host string) string {
	g.n++
	return fmt.Sprintf("%s/hostile/%d", host, g.n)
}

func note(id, actor, to, content string) []byte {
	return []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Create","actor":%q,"to":[%q],"object":{"id":%q,"type":"Note","attributedTo":%q,"content":%s}}`,
		id, actor, to, id+"/note", actor, content))
}

// signed returns a POST to alpha's shared inbox signed by key/keyID at time at, the
// body as given.
func (g *generator) signed(class, name string, body []byte, key crypto.Signer, keyID string, at time.Time, headers ...string) hostile {
	h := hostile{class: class, name: name, method: http.MethodPost, path: "/inbox", body: body, header: http.Header{}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.w.alpha.host+"/inbox", bytes.NewReader(body))
	req.Host = g.w.alpha.host
	req.Header.Set("Content-Type", ctAS)
	if key != nil {
		if err := signAt(req, body, key, keyID, at, headers...); err != nil {
			panic(err)
		}
	}
	h.header = req.Header
	return h
}

// classes maps each class to its generator of one request; weights give the mix.
func (g *generator) classes() []struct {
	name   string
	weight int
	gen    func() hostile
} {
	w := g.w
	now := time.Now
	wk, wkid := w.watcherKey, w.watcherID+"#main-key"
	mk, mkid := w.malloryKey, w.malloryID+"#main-key"
	wnote := func() []byte { return note(g.id(hostOf(w.watcherID)), w.watcherID, w.alphaID, `"hi"`) }
	pick := func(xs ...string) string { return xs[g.rng.IntN(len(xs))] }
	return []struct {
		name   string
		weight int
		gen    func() hostile
	}{
		{"signature", 25, func() hostile {
			switch g.rng.IntN(10) {
			case 0:
				return g.signed("signature", "unsigned", wnote(), nil, "", now())
			case 1:
				return g.signed("signature", "attacker's key under the peer's keyId", wnote(), mk, wkid, now())
			case 2:
				h := g.signed("signature", "signature bytes altered", wnote(), wk, wkid, now())
				s := h.header.Get("Signature")
				i := strings.Index(s, `signature="`) + 11 + g.rng.IntN(40)
				c := "A"
				if s[i] == 'A' {
					c = "B"
				}
				h.header.Set("Signature", s[:i]+c+s[i+1:])
				return h
			case 3:
				other := strings.TrimSuffix(w.watcherID, "watcher") + pick("someone", "releases", "admin")
				return g.signed("signature", "peer's key, another actor of its host", note(g.id(hostOf(w.watcherID)), other, w.alphaID, `"x"`), wk, wkid, now())
			case 4:
				typ := pick("Follow", "Create", "Undo", "Like")
				body := []byte(fmt.Sprintf(`{"id":%q,"type":%q,"actor":%q,"object":%q}`, g.id(w.evilBase), typ, w.victimID, w.alphaID))
				return g.signed("signature", "document claiming an actor (liar.json)", body, mk, w.evilBase+"/uploads/liar.json#main-key", now())
			case 5:
				planted := pick(w.alphaID+"#x", w.thirdHostKey, wkid, w.victimID+"#main-key", strings.TrimSuffix(w.alphaID, "/releases")+"/other#main-key")
				return g.signed("signature", "Update planting a key outside its document", malloryUpdate(w, g.id(w.evilBase), g.malloryPEM, planted), mk, mkid, now())
			case 6:
				kid := pick(w.alphaID+"#x", w.thirdHostKey, w.victimID+"#main-key")
				return g.signed("signature", "signed under a keyId an Update tried to plant", note(g.id(w.evilBase), w.malloryID, w.alphaID, `"x"`), mk, kid, now())
			case 7:
				kid := pick("http://10.0.0.1/users/x#main-key", "http://169.254.169.254/latest/meta-data#k", "http://[::1]/x#k", "http://0.0.0.0/x#k",
					"file:///etc/passwd#k", "gopher://evil/x#k", "javascript:alert(1)", "http://user:pw@"+hostOf(w.watcherID)+"/x#k", "ftp://x/y#k", "", "http://[fe80::1%25eth0]/x#k")
				return g.signed("signature", "keyId at a special address or odd scheme", wnote(), wk, kid, now())
			case 8:
				hdrs := [][]string{{"(request-target)", "host", "date"}, {"date"}, {"host", "digest"}, {"(request-target)", "digest"}}
				return g.signed("signature", "required headers not signed", wnote(), wk, wkid, now(), hdrs[g.rng.IntN(len(hdrs))]...)
			default:
				h := g.signed("signature", "malformed Signature header", wnote(), wk, wkid, now())
				h.header.Set("Signature", pick(`keyId="x"`, `keyId=,signature=`, strings.Repeat("a", 9000), `keyId="`+wkid+`",algorithm="rsa-sha256",headers="date",signature="@@@"`, `keyId="`+wkid+`"`))
				return h
			}
		}},
		{"replay-clock", 15, func() hostile {
			switch g.rng.IntN(4) {
			case 0:
				if len(g.replays) > 0 {
					r := g.replays[g.rng.IntN(len(g.replays))]
					r.class, r.name = "replay-clock", "exact replay of an accepted request"
					return r
				}
				fallthrough
			case 1:
				return g.signed("replay-clock", "Date 2 h old", wnote(), wk, wkid, now().Add(-time.Duration(65+g.rng.IntN(600))*time.Minute))
			case 2:
				return g.signed("replay-clock", "Date 2 h ahead", wnote(), wk, wkid, now().Add(time.Duration(65+g.rng.IntN(600))*time.Minute))
			default:
				h := g.signed("replay-clock", "Date changed after signing", wnote(), wk, wkid, now())
				h.header.Set("Date", now().Add(-time.Minute).UTC().Format(http.TimeFormat))
				return h
			}
		}},
		{"body", 20, func() hostile {
			id := g.id(hostOf(w.watcherID))
			var body []byte
			name := ""
			switch g.rng.IntN(12) {
			case 0, 1, 2, 3:
				bad := pick("\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe6\x97", "\xf8\x88\x80\x80\x80", "\x80")
				body, name = note(id, w.watcherID, w.alphaID, `"a`+bad+`b"`), "invalid UTF-8"
			case 4:
				body, name = []byte(fmt.Sprintf(`{"id":%q,"type":"Follow","actor":%q,"Actor":%q,"object":%q}`, id, w.watcherID, w.malloryID, w.alphaID)), "case-variant actor"
			case 5:
				body, name = []byte(fmt.Sprintf(`{"id":%q,"type":"Follow","TYPE":"Like","actor":%q,"object":%q}`, id, w.watcherID, w.alphaID)), "type and TYPE"
			case 6:
				body, name = []byte(fmt.Sprintf(`{"id":%q,"type":"Create","actor":%q,"object":{"id":"%s/n","type":"Note","content":"a","content":"b"}}`, id, w.watcherID, id)), "duplicate in the embedded object"
			case 7:
				body, name = []byte(fmt.Sprintf(`{"id":%q,"type":"Create","actor":%q,"actor":%q}`, id, w.watcherID, w.malloryID)), "duplicate actor"
			case 8:
				body, name = []byte(fmt.Sprintf(`{"id":%q,"type":"Create","actor":%q,"pad":"%s"}`, id, w.watcherID, strings.Repeat("a", activitypub.MaxDocumentBytes))), "over 1 MiB"
			case 9:
				body, name = []byte(pick(`[]`, `"x"`, `{`, `{"id":1}`, strings.Repeat(`{"a":`, 40)+"1"+strings.Repeat("}", 40), `{"type":"Note"}`)), "not an activity"
			case 10:
				body, name = []byte(fmt.Sprintf(`{"id":"https://elsewhere.example/%d","type":"Create","actor":%q}`, g.n, w.watcherID)), "id on another host"
			default:
				body, name = []byte(fmt.Sprintf(`{"id":%q,"type":"Create","actor":%q}`, id, pick("acct:watcher@beta", "javascript:alert(1)", "/relative", "http://"))), "actor not an http(s) IRI"
			}
			h := g.signed("body", name, body, wk, wkid, now())
			if g.rng.IntN(8) == 0 {
				h.header.Set("Content-Type", pick("text/plain", "application/x-www-form-urlencoded", "", "multipart/form-data; boundary=x"))
				h.name = "wrong content type"
			}
			return h
		}},
		{"semantics", 15, func() hostile {
			switch g.rng.IntN(4) {
			case 0:
				return g.signed("semantics", "actor is not the key owner", note(g.id(w.evilBase), w.malloryID, w.alphaID, `"x"`), wk, wkid, now())
			case 1:
				h := g.signed("semantics", "personal inbox of an unknown local actor", wnote(), wk, wkid, now())
				h.path = "/actors/" + pick("nobody", "releases2", "%00", "x%2Fy", "Releases.") + "/inbox"
				return h
			case 2:
				body := []byte(fmt.Sprintf(`{"id":%q,"type":"Move","actor":%q,"object":%q,"target":%q}`, g.id(hostOf(w.watcherID)), w.watcherID, w.alphaID, w.malloryID))
				return g.signed("semantics", "Move of someone else", body, wk, wkid, now())
			default:
				body := []byte(fmt.Sprintf(`{"id":%q,"type":"Move","actor":%q,"object":%q}`, g.id(hostOf(w.watcherID)), w.watcherID, w.watcherID))
				return g.signed("semantics", "Move without a target", body, wk, wkid, now())
			}
		}},
		{"discovery", 15, func() hostile {
			paths := []string{
				"/.well-known/webfinger", "/.well-known/webfinger?resource=", "/.well-known/webfinger?resource=acct:",
				"/.well-known/webfinger?resource=acct:nobody@" + w.alpha.host, "/.well-known/webfinger?resource=acct:releases@evil.example",
				"/.well-known/webfinger?resource=%FF%FE", "/.well-known/webfinger?resource=acct:" + strings.Repeat("a", 5000) + "@" + w.alpha.host,
				"/.well-known/webfinger?resource=http://10.0.0.1/", "/.well-known/webfinger?resource=acct:%00@" + w.alpha.host,
				"/.well-known/webfinger?resource=" + url.QueryEscape("acct:releases@"+w.alpha.host+"\r\nX: y"),
				"/nodeinfo/3.0", "/nodeinfo/2.1/x", "/nodeinfo/", "/actors/nobody", "/actors/nobody/outbox", "/actors/nobody/followers",
				"/actors/releases/outbox?page=true&cursor=" + pick("%FF", "garbage!", strings.Repeat("A", 3000)+"!", "-1"),
				"/actors/releases/followers?page=true&cursor=" + pick("%25%25", "!!", "=="), "/actors/releases/following?page=true&cursor=%2B%2F",
				"/actors/releases/activities/nonexistent", "/actors/releases/objects/" + strings.Repeat("x", 2000), "/actors/releases/unknown/x",
				"/actors/releases/inbox", "/inbox",
			}
			h := hostile{class: "discovery", method: http.MethodGet, path: paths[g.rng.IntN(len(paths))], header: http.Header{}}
			if g.rng.IntN(6) == 0 {
				h.method = pick(http.MethodPut, http.MethodDelete, http.MethodPatch, "PROPFIND")
				h.path = pick("/.well-known/webfinger?resource=acct:releases@"+w.alpha.host, "/nodeinfo/2.1", "/actors/releases", "/actors/releases/outbox")
			}
			h.name = h.method + " " + strings.SplitN(h.path, "?", 2)[0]
			return h
		}},
		{"transport", 10, func() hostile {
			host := "Host: " + w.alpha.host + "\r\n"
			var b strings.Builder
			name := ""
			switch g.rng.IntN(7) {
			case 0:
				body := "0\r\n\r\nGET /healthz HTTP/1.1\r\n" + host + "\r\n"
				fmt.Fprintf(&b, "POST /inbox HTTP/1.1\r\n%sContent-Type: %s\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", host, ctAS, len(body), body)
				name = "Content-Length with Transfer-Encoding (hidden request)"
			case 1:
				fmt.Fprintf(&b, "GET /healthz HTTP/1.1\r\n%s", host)
				for i := 0; i < 101+g.rng.IntN(10000); i++ {
					fmt.Fprintf(&b, "X-F%d: v\r\n", i)
				}
				b.WriteString("\r\n")
				name = "over 100 header fields"
			case 2:
				fmt.Fprintf(&b, "GET /healthz HTTP/1.1\r\n%sX-Big: %s\r\n\r\n", host, strings.Repeat("a", 70<<10+g.rng.IntN(1<<20)))
				name = "header over 64 KiB"
			case 3:
				fmt.Fprintf(&b, "POST /inbox HTTP/1.1\r\n%sContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", host)
				name = "two Content-Lengths"
			case 4:
				fmt.Fprintf(&b, "POST /inbox HTTP/1.1\r\n%sTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", host)
				name = "unsupported Transfer-Encoding"
			case 5:
				fmt.Fprintf(&b, "%s\r\n%s\r\n", pick("GET /healthz HTTP/9.9", "GET  HTTP/1.1", "G\x00T /healthz HTTP/1.1", "GET /healthz"), host)
				name = "malformed request line"
			default:
				fmt.Fprintf(&b, "GET /healthz HTTP/1.1\r\n%sX-Nul: a\x00b\r\n\r\n", host)
				name = "NUL in a header"
			}
			return hostile{class: "transport", name: name, raw: b.String()}
		}},
	}
}

func hostOf(id string) string {
	u, _ := url.Parse(id)
	return u.Scheme + "://" + u.Host
}

// dialAlpha opens a TCP connection to the instance under attack.
func dialAlpha(in instance) (net.Conn, error) {
	return net.DialTimeout("tcp", in.listen, 5*time.Second)
}
