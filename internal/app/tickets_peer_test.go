package app

import (
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// ticketPeer is a remote instance on 127.0.0.5 written in Go: actors alice and mallory
// (each with its own key) that sign what they send, and a verifyingInbox.
type ticketPeer struct {
	verifyingInbox
	host, addr string
	keys       map[string]*rsa.PrivateKey
	pems       map[string]string
}

func newTicketPeer(t *testing.T) *ticketPeer {
	ln, err := net.Listen("tcp", "127.0.0.5:0")
	must(t, err)
	tp := &ticketPeer{host: "tickets.peer.test", addr: ln.Addr().String(), keys: map[string]*rsa.PrivateKey{}, pems: map[string]string{}}
	tp.origin = "http://" + tp.host
	for _, name := range []string{"alice", "mallory"} {
		tp.keys[name], tp.pems[name] = peerKey(t)
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
	mux.HandleFunc("POST /users/{name}/inbox", tp.serveInbox)
	servePeer(t, ln, mux)
	return tp
}

func (tp *ticketPeer) actor(name string) string { return "http://" + tp.host + "/users/" + name }

// send signs body as the peer's actor name and POSTs it to alpha's shared inbox.
func (tp *ticketPeer) send(t *testing.T, p *pair, name string, doc map[string]any) (int, string) {
	t.Helper()
	return sendSigned(t, p, tp.keys[name], tp.actor(name)+"#main-key", doc)
}

// apiCounter is a reverse proxy in front of Gitea that records the API calls Fedforge
// makes, so that the test counts forge calls per inbound activity.
type apiCounter struct {
	url   string
	mu    sync.Mutex
	calls []string
	took  []time.Duration // how long Gitea took to answer each call (load_tickets_test.go)
	gen   int             // counts resets, so that a call answered after one is not filed
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
		// The call is recorded before Gitea sees it, so that a test that finds the
		// write in Gitea also finds the call here; its time is filled in after.
		start := time.Now()
		c.mu.Lock()
		c.calls, c.took = append(c.calls, r.Method+" "+r.URL.Path), append(c.took, 0)
		i, gen := len(c.calls)-1, c.gen
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
		c.mu.Lock()
		if c.gen == gen {
			c.took[i] = time.Since(start)
		}
		c.mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

func (c *apiCounter) reset() {
	c.mu.Lock()
	c.calls, c.took = nil, nil
	c.gen++
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
