package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// TestStoreOutageAnswers503AndResumes puts a loopback TCP proxy between a server and
// its real PostgreSQL and cuts it, as a database restart or a network partition would:
// the server's readiness goes false and its inbox answers 503 with Retry-After (not 500,
// not a hang) for an activity it could not record; when the proxy comes back, readiness
// returns and the same activity, sent again, is accepted, without restarting anything.
func TestStoreOutageAnswers503AndResumes(t *testing.T) {
	t.Parallel()
	base := os.Getenv("FEDFORGE_TEST_POSTGRES_DSN")
	if base == "" {
		t.Fatal("FEDFORGE_TEST_POSTGRES_DSN is not set: run `export FEDFORGE_TEST_POSTGRES_DSN=\"$(hack/test-postgres.sh)\"` (make test does)")
	}
	p := newPair(t)
	p.actor(t, p.beta, "watcher", "watcher", false)
	key := actorKey(t, p, "beta", "watcher")
	watcher := p.beta.base() + "/actors/watcher"

	// gamma: a third server, on PostgreSQL through the proxy.
	u, err := url.Parse(freshSchema(t, base))
	must(t, err)
	px := startProxy(t, u.Host)
	u.Host = px.addr
	gamma := instance{ns: "gamma", host: "gamma.fedforge.test", listen: freeAddr(t, "127.0.0.6")}
	ctx, cancel := context.WithCancel(context.Background())
	must(t, p.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gamma.ns}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederationServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: gamma.ns, Name: "forge"},
		Spec:       fedv1.FederationServerSpec{Host: gamma.host, Scheme: fedv1.SchemeHTTP, AllowedPrivateCIDRs: []string{"127.0.0.0/8"}},
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := RunServer(ctx, p.cfg, ServerOptions{Server: gamma.ns + "/forge", Listen: gamma.listen, StoreDSN: u.String(),
			AllowedCIDRs: []string{"127.0.0.0/8"}, AllowHTTP: true, Resolve: []string{betaHost + "=" + p.beta.listen},
			MetricsAddr: "0", FeedTick: time.Second, StatusInterval: time.Second})
		if err != nil && ctx.Err() == nil {
			t.Errorf("gamma: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	readyz := func() int {
		resp, err := http.Get("http://" + gamma.listen + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 30*time.Second, func() error {
		if s := readyz(); s != http.StatusOK {
			return fmt.Errorf("gamma /readyz: %d", s)
		}
		return nil
	})
	note := func(n int) []byte {
		return []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%[1]s/notes/%[2]d/activity","type":"Create","actor":%[1]q,"to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"%[1]s/notes/%[2]d","type":"Note","content":"outage %[2]d","attributedTo":%[1]q}}`, watcher, n))
	}
	send := func(body []byte) (int, string, http.Header) {
		req, err := http.NewRequest(http.MethodPost, "http://"+gamma.listen+"/inbox", nil)
		must(t, err)
		req.Host = gamma.host
		req.Header.Set("Content-Type", "application/activity+json")
		signer(t, body, key, watcher+"#main-key", time.Now())(req)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if s, b, _ := send(note(1)); s != http.StatusAccepted {
		t.Fatalf("before the outage: %d %s", s, b)
	}

	px.cut()
	eventually(t, 30*time.Second, func() error {
		if s := readyz(); s != http.StatusServiceUnavailable {
			return fmt.Errorf("gamma /readyz during the outage: %d, want 503", s)
		}
		return nil
	})
	s, b, h := send(note(2))
	if s != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("an activity during the outage: %d (Retry-After %q) %s; want 503 with Retry-After", s, h.Get("Retry-After"), b)
	}

	px.restore()
	eventually(t, 60*time.Second, func() error {
		if s := readyz(); s != http.StatusOK {
			return fmt.Errorf("gamma /readyz after the outage: %d", s)
		}
		return nil
	})
	if s, b, _ := send(note(2)); s != http.StatusAccepted {
		t.Errorf("the refused activity sent again after the outage: %d %s, want 202", s, b)
	}
	st, err := store.Open(context.Background(), u.String())
	must(t, err)
	defer st.Close()
	for _, n := range []int{1, 2} {
		if _, err := st.GetReceived(context.Background(), fmt.Sprintf("%s/notes/%d/activity", watcher, n)); err != nil {
			t.Errorf("activity %d is not in the received log after the outage: %v", n, err)
		}
	}
}

// proxy forwards TCP connections from a loopback address to target until cut, which
// closes its listener and every open connection (a database going away); restore listens
// again on the same address.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, addr: freeAddr(t, "127.0.0.6"), target: target, conns: map[net.Conn]bool{}}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) restore() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after cut
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(p.t, err)
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}
