package app

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
)

// ticketPeer is a remote instance on 127.0.0.5 written in Go: actors alice and mallory
// (each with its own key) that sign what they send, and an inbox that verifies the
// signature of every POST against the sending actor's published key, as a real peer
// does, and keeps what verified.
type ticketPeer struct {
	host, addr string
	keys       map[string]*rsa.PrivateKey
	pems       map[string]string
	verifier   *activitypub.Verifier
	mu         sync.Mutex
	got        []map[string]any // verified activities, in arrival order
	at         []time.Time      // when each of got arrived (load_tickets_test.go)
	unverified []string
}

func newTicketPeer(t *testing.T) *ticketPeer {
	ln, err := net.Listen("tcp", "127.0.0.5:0")
	must(t, err)
	tp := &ticketPeer{host: "tickets.peer.test", addr: ln.Addr().String(), keys: map[string]*rsa.PrivateKey{}, pems: map[string]string{}}
	for _, name := range []string{"alice", "mallory"} {
		k, err := keys.Generate()
		must(t, err)
		pem, err := keys.EncodePublic(k.RSA.Public())
		must(t, err)
		tp.keys[name], tp.pems[name] = k.RSA, string(pem)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if tp.pems[name] == "" {
			http.NotFound(w, r)
			return
		}
		id := tp.actor(name)
		w.Header().Set("Content-Type", "application/activity+json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"@context": []string{activitypub.ActivityStreamsContext, activitypub.SecurityContext},
			"id":       id, "type": "Person", "preferredUsername": name, "name": strings.ToUpper(name[:1]) + name[1:],
			"inbox":     id + "/inbox",
			"publicKey": map[string]string{"id": id + "#main-key", "owner": id, "publicKeyPem": tp.pems[name]},
		})
	})
	mux.HandleFunc("POST /users/{name}/inbox", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		tp.mu.Lock()
		verifier := tp.verifier
		tp.mu.Unlock()
		v, err := verifier.VerifyRequest(r.Context(), r, body)
		var doc map[string]any
		_ = json.Unmarshal(body, &doc)
		tp.mu.Lock()
		defer tp.mu.Unlock()
		if err != nil || v.CheckActor(fmt.Sprint(doc["actor"])) != nil {
			tp.unverified = append(tp.unverified, fmt.Sprintf("%v: %s", err, body))
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		tp.got, tp.at = append(tp.got, doc), append(tp.at, time.Now())
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return tp
}

// attach makes the peer verify signatures with keys fetched from alpha.
func (tp *ticketPeer) attach(alphaListen string) {
	guard := activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Resolve: map[string]string{alphaHost: alphaListen}})
	v := activitypub.NewVerifier(activitypub.NewKeyCache(guard, nil, activitypub.KeyCacheConfig{}), 1000)
	v.Origin = func(context.Context) (*url.URL, error) { return url.Parse("http://" + tp.host) }
	tp.mu.Lock()
	tp.verifier = v
	tp.mu.Unlock()
}

func (tp *ticketPeer) actor(name string) string { return "http://" + tp.host + "/users/" + name }

// answers returns the verified activities of a type whose object is objectID.
func (tp *ticketPeer) answers(typ, objectID string) []map[string]any {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []map[string]any
	for _, d := range tp.got {
		obj := d["object"]
		if m, ok := obj.(map[string]any); ok {
			obj = m["id"]
		}
		if d["type"] == typ && obj == objectID {
			out = append(out, d)
		}
	}
	return out
}

// send signs body as the peer's actor name and POSTs it to alpha's shared inbox.
func (tp *ticketPeer) send(t *testing.T, p *pair, name string, doc map[string]any) (int, string) {
	t.Helper()
	body, err := json.Marshal(doc)
	must(t, err)
	return post(t, p.alpha, "/inbox", body, "application/activity+json", func(r *http.Request) {
		must(t, activitypub.SignCavage(r, body, tp.keys[name], tp.actor(name)+"#main-key", activitypub.CavageOptions{}))
	})
}

// apiCounter is a reverse proxy in front of Gitea that records the API calls Fedforge
// makes, so that the test counts forge calls per inbound activity.
type apiCounter struct {
	url   string
	mu    sync.Mutex
	calls []string
	took  []time.Duration // how long Gitea took to answer each call (load_tickets_test.go)
}

func startAPICounter(t *testing.T, target string) *apiCounter {
	u, err := url.Parse(target)
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.6:0")
	must(t, err)
	c := &apiCounter{url: "http://" + ln.Addr().String()}
	proxy := httputil.NewSingleHostReverseProxy(u)
	direct := proxy.Director
	proxy.Director = func(r *http.Request) { direct(r); r.Host = u.Host } // Gitea writes its URLs from Host
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call, start := r.Method+" "+r.URL.Path, time.Now()
		proxy.ServeHTTP(w, r)
		c.mu.Lock()
		c.calls, c.took = append(c.calls, call), append(c.took, time.Since(start))
		c.mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

func (c *apiCounter) reset() {
	c.mu.Lock()
	c.calls, c.took = nil, nil
	c.mu.Unlock()
}

// issueCalls are the recorded calls on issues and comments (not the operator's probe of
// the repository).
func (c *apiCounter) issueCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, call := range c.calls {
		if strings.Contains(call, "/issues") {
			out = append(out, call)
		}
	}
	return out
}
