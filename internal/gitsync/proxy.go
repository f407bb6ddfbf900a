package gitsync

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedforge/fedforge/internal/netguard"
)

// ErrTooLarge is wrapped when a remote sent more than the configured cap in one operation;
// the connection is cut and nothing is pushed.
var ErrTooLarge = errors.New("fetch exceeds the size cap")

// proxy is an HTTP proxy on a loopback port of its own that git (through libcurl) is told
// to use for every URL (http.proxy). It is where the rules for git's network traffic live,
// in one place: every connection is dialled by the netguard dialer (special addresses
// refused after DNS, the static resolver map applied), plain-http requests are checked
// with netguard.CheckURL, and the bytes the remote sends are counted against a cap. It
// lives for one operation; a random password keeps other local processes from using it to
// get around the guard.
type proxy struct {
	guard    *netguard.Guard
	max      int64 // 0: no cap
	ctx      context.Context
	ln       net.Listener
	srv      *http.Server
	password string

	received atomic.Int64
	mu       sync.Mutex
	failure  error // first refusal or cap reached
	tunnels  map[net.Conn]struct{}
}

// proxyUser is the user name git presents to the proxy.
const proxyUser = "gitsync"

// startProxy listens on 127.0.0.1 and serves until Close or until ctx is done.
func startProxy(ctx context.Context, guard *netguard.Guard, maxBytes int64) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("gitsync proxy: listen on loopback: %w", err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		ln.Close()
		return nil, fmt.Errorf("gitsync proxy: random: %w", err)
	}
	p := &proxy{guard: guard, max: maxBytes, ctx: ctx, ln: ln, password: hex.EncodeToString(b), tunnels: map[net.Conn]struct{}{}}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          nil,
	}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the value for git's http.proxy, with the proxy's credentials.
func (p *proxy) URL() string {
	return "http://" + proxyUser + ":" + p.password + "@" + p.ln.Addr().String()
}

// Err is the first refusal (netguard.ErrRefused) or cap (ErrTooLarge) the proxy met.
func (p *proxy) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failure
}

// Received is the number of bytes remotes sent through the proxy.
func (p *proxy) Received() int64 { return p.received.Load() }

// Close stops the proxy and cuts the tunnels still open.
func (p *proxy) Close() {
	_ = p.srv.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.tunnels {
		_ = c.Close()
	}
}

func (p *proxy) fail(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failure == nil {
		p.failure = err
	}
	return err
}

// count adds n received bytes and reports the cap being exceeded.
func (p *proxy) count(n int, host string) error {
	total := p.received.Add(int64(n))
	if p.max > 0 && total > p.max {
		return p.fail(fmt.Errorf("%w: %s sent more than %d bytes", ErrTooLarge, host, p.max))
	}
	return nil
}

func (p *proxy) authorized(r *http.Request) bool {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(proxyUser+":"+p.password))
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Proxy-Authorization")), []byte(want)) == 1
}

// ServeHTTP answers CONNECT (https remotes: a byte tunnel to a guarded connection; git's
// libcurl does TLS end to end) and absolute-form plain-http requests (forwarded through
// the guard's transport, redirects left to git so that each hop comes back here).
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.authorized(r) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="gitsync"`)
		http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	p.forward(w, r)
}

func (p *proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if err := p.guard.CheckURL(&url.URL{Scheme: "https", Host: host}); err != nil {
		http.Error(w, p.fail(err).Error(), http.StatusForbidden)
		return
	}
	remote, err := p.guard.Transport().DialContext(r.Context(), "tcp", host)
	if err != nil {
		if errors.Is(err, netguard.ErrRefused) {
			p.fail(fmt.Errorf("connect to %s: %w", host, err))
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		remote.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		remote.Close()
		return
	}
	p.mu.Lock()
	p.tunnels[client], p.tunnels[remote] = struct{}{}, struct{}{}
	p.mu.Unlock()
	defer func() {
		client.Close()
		remote.Close()
		p.mu.Lock()
		delete(p.tunnels, client)
		delete(p.tunnels, remote)
		p.mu.Unlock()
	}()
	stop := context.AfterFunc(p.ctx, func() { client.Close(); remote.Close() })
	defer stop()
	if _, err := client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	go func() {
		// What git sends (its wants and haves, TLS records); buffered bytes first.
		if n := buf.Reader.Buffered(); n > 0 {
			b, _ := buf.Reader.Peek(n)
			_, _ = remote.Write(b)
		}
		_, _ = io.Copy(remote, client)
		remote.Close()
	}()
	_, _ = io.Copy(client, &countingReader{r: remote, p: p, host: host})
}

// hopHeaders are not forwarded in either direction (RFC 9110 7.6.1), nor are the proxy's
// own credentials.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect"}

func (p *proxy) forward(w http.ResponseWriter, r *http.Request) {
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		http.Error(w, "only absolute http URLs and CONNECT", http.StatusBadRequest)
		return
	}
	host := r.URL.Host
	if err := p.guard.CheckURL(r.URL); err != nil {
		http.Error(w, p.fail(err).Error(), http.StatusForbidden)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	out.ContentLength = r.ContentLength
	resp, err := p.guard.Transport().RoundTrip(out)
	if err != nil {
		if errors.Is(err, netguard.ErrRefused) {
			p.fail(fmt.Errorf("%s: %w", host, err))
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if err := p.count(n, host); err != nil {
				panic(http.ErrAbortHandler) // cut git's connection mid-pack
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr != nil {
			return
		}
	}
}

// countingReader counts what a tunnelled remote sends and stops at the cap.
type countingReader struct {
	r    io.Reader
	p    *proxy
	host string
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		if cerr := c.p.count(n, c.host); cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}
