// Package netguard is the outbound network guard every request Fedforge makes to another
// host goes through: ActivityPub fetches and deliveries (internal/activitypub), feed
// polls (internal/forge/feed) and forge API calls. It refuses special addresses after DNS
// (so neither a name, a rebinding nor a redirect reaches loopback, private, link-local or
// other special ranges unless the configuration allows them), applies a deadline to every
// read and write, bounds the whole exchange, redirects and bodies, and maps host names to
// addresses for local instances (like curl --resolve).
//
// It holds no protocol: callers add their own headers, signing and status handling on top
// of the transport and checks it gives them.
package netguard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is wrapped by every refusal of the guard (a special address, a scheme or
// URL it never fetches, too many redirects), so callers can map it to their own error
// kind (403 in the inbox).
var ErrRefused = errors.New("refused by the network guard")

// Config configures a Guard. Zero durations and sizes take the defaults in New.
type Config struct {
	// AllowedCIDRs lets the dialer reach special ranges (loopback, private...) that are
	// refused otherwise; for local mode, tests and a forge on the cluster's network.
	AllowedCIDRs []netip.Prefix
	// Resolve maps host names to "ip" or "ip:port", like curl --resolve, so that several
	// instances with real names can run on 127.0.0.x. Mapped addresses are still checked.
	Resolve map[string]string
	// AllowHTTP permits plain-http URLs (local mode and tests).
	AllowHTTP bool
	// TLSConfig is used for HTTPS (tests pass the httptest CA); nil means the system roots.
	TLSConfig *tls.Config

	ConnectTimeout time.Duration // default 5 s
	ReadTimeout    time.Duration // per read/write on the connection, default 10 s
	TotalTimeout   time.Duration // whole exchange, default 30 s
	MaxRedirects   int           // default 3
	MaxBodyBytes   int64         // default 1 MiB
	// MaxIdleConnsPerHost bounds kept-alive connections per host (default 4).
	MaxIdleConnsPerHost int
}

// Guard is one configured guard; it is safe for concurrent use.
type Guard struct {
	cfg       Config
	transport *http.Transport
}

// New builds a Guard and its transport.
func New(cfg Config) *Guard {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.TotalTimeout == 0 {
		cfg.TotalTimeout = 30 * time.Second
	}
	if cfg.MaxRedirects == 0 {
		cfg.MaxRedirects = 3
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxIdleConnsPerHost == 0 {
		cfg.MaxIdleConnsPerHost = 4
	}
	g := &Guard{cfg: cfg}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, Control: g.control}
	g.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, g.MapAddr(addr))
			if err != nil {
				return nil, err
			}
			return &deadlineConn{Conn: conn, timeout: cfg.ReadTimeout}, nil
		},
		TLSClientConfig:       cfg.TLSConfig,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.ReadTimeout,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return g
}

// Config returns the guard's configuration with its defaults filled in.
func (g *Guard) Config() Config { return g.cfg }

// Transport is the guarded transport: every connection it opens is checked after DNS and
// has per-operation deadlines.
func (g *Guard) Transport() *http.Transport { return g.transport }

// Client returns an http.Client on the guarded transport with the total timeout and a
// redirect policy that re-checks every target (CheckURL) and stops after MaxRedirects;
// onRedirect, when not nil, runs after those checks (to re-sign a request).
func (g *Guard) Client(onRedirect func(r *http.Request) error) *http.Client {
	return &http.Client{
		Transport: g.transport,
		Timeout:   g.cfg.TotalTimeout,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) > g.cfg.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects (at %s)", ErrRefused, g.cfg.MaxRedirects, r.URL.Hostname())
			}
			if err := g.CheckURL(r.URL); err != nil {
				return err
			}
			if onRedirect != nil {
				return onRedirect(r)
			}
			return nil
		},
	}
}

// MapAddr applies the static resolver map (Config.Resolve) to a "host:port" dial address.
func (g *Guard) MapAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || g.cfg.Resolve == nil {
		return addr
	}
	to, ok := g.cfg.Resolve[strings.ToLower(host)]
	if !ok {
		return addr
	}
	if _, _, err := net.SplitHostPort(to); err == nil {
		return to
	}
	return net.JoinHostPort(to, port)
}

// specialRanges are refused unless AllowedCIDRs lists them: every address that is not a
// plain public unicast address on the Internet.
var specialRanges = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
		"2002::/16", "fc00::/7", "fe80::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// CheckAddr reports whether the dialer may connect to ip: special ranges are refused
// unless allowed.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, p := range g.cfg.AllowedCIDRs {
		if p.Contains(ip) {
			return nil
		}
	}
	for _, p := range specialRanges {
		if p.Contains(ip) {
			return fmt.Errorf("%w: address %s in special range %s", ErrRefused, ip, p)
		}
	}
	return nil
}

// CheckURL refuses URLs we never fetch: non-http(s) schemes (plain http unless
// AllowHTTP), userinfo, missing hosts, and literal addresses CheckAddr refuses.
func (g *Guard) CheckURL(u *url.URL) error {
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && g.cfg.AllowHTTP):
		return fmt.Errorf("%w: scheme %q is not allowed (%s)", ErrRefused, u.Scheme, u.Hostname())
	case u.Host == "" || u.User != nil:
		return fmt.Errorf("%w: URL without host or with credentials", ErrRefused)
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		return g.CheckAddr(ip)
	}
	return nil
}

// control runs for every connection attempt, after resolution, so DNS rebinding and
// redirects cannot reach a refused address.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable dial address %q: %v", ErrRefused, address, err)
	}
	return g.CheckAddr(ap.Addr())
}

// deadlineConn applies the read/write timeout to every operation, so a peer that
// trickles bytes cannot hold a worker for long.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	_ = d.Conn.SetReadDeadline(time.Now().Add(d.timeout))
	return d.Conn.Read(p)
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	now := time.Now()
	_ = d.Conn.SetWriteDeadline(now.Add(d.timeout))
	// The transport's background Read on a kept-alive connection started when it went
	// idle; without this, a reused connection could time out on an answer that arrives
	// in time (and the activity would be sent again).
	_ = d.Conn.SetReadDeadline(now.Add(d.timeout))
	return d.Conn.Write(p)
}
