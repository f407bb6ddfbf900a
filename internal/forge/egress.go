package forge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// APIClientConfig bounds the HTTP client that forge API calls go through. Zero values
// take the defaults below.
type APIClientConfig struct {
	// ConnectTimeout defaults to 5 s, TotalTimeout (one whole API call) to 30 s.
	ConnectTimeout, TotalTimeout time.Duration
	// MaxRedirects defaults to 3.
	MaxRedirects int
	// MaxBodyBytes caps a response body (default 4 MiB): an API answer about one
	// repository or issue is a few KiB, and the SDKs read bodies whole.
	MaxBodyBytes int64
}

// NewAPIClient returns the HTTP client for forge API calls: its dialer checks every
// address it connects to (after DNS, and again on every redirect) with guard's CheckAddr,
// so a forge on a loopback, private or link-local address is reached only when the
// server's allowedPrivateCIDRs lists its range — the rule every outbound request of
// Fedforge follows. guard's --resolve mapping applies too. A nil guard refuses every dial.
//
// It builds its own transport, as internal/forge/feed does, because the forges' SDKs take
// an *http.Client, not the activitypub client's Fetch/Deliver methods.
func NewAPIClient(guard *activitypub.Client, cfg APIClientConfig) *http.Client {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.TotalTimeout == 0 {
		cfg.TotalTimeout = 30 * time.Second
	}
	if cfg.MaxRedirects == 0 {
		cfg.MaxRedirects = 3
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("forge API: unparsable dial address %q: %w", address, err)
		}
		if guard == nil {
			return errors.New("forge API: client without an address guard")
		}
		return guard.CheckAddr(ap.Addr())
	}}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if guard != nil {
				addr = guard.MapAddr(addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.TotalTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: &capBody{next: transport, max: cfg.MaxBodyBytes},
		Timeout:   cfg.TotalTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return fmt.Errorf("forge API: more than %d redirects from %s", cfg.MaxRedirects, via[0].URL.Host)
			}
			return nil
		},
	}
}

// capBody stops reading a response body after max bytes, with an error rather than a
// silent truncation.
type capBody struct {
	next http.RoundTripper
	max  int64
}

func (c *capBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedReader{r: resp.Body, left: c.max, host: req.URL.Host}
	return resp, nil
}

type cappedReader struct {
	r    io.ReadCloser
	left int64
	host string
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("forge API: response from %s larger than the cap", c.host)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cappedReader) Close() error { return c.r.Close() }
