package forge

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/fedforge/fedforge/internal/netguard"

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

// NewAPIClient returns the HTTP client for forge API calls, on internal/netguard like
// every outbound request of Fedforge: its dialer checks every address it connects to
// (after DNS, and again on every redirect), so a forge on a loopback, private or
// link-local address is reached only when the server's allowedPrivateCIDRs lists its
// range; guard's --resolve mapping and plain-http setting apply too. The forges' SDKs take
// an *http.Client, hence a client of its own rather than the activitypub client's methods.
func NewAPIClient(guard *activitypub.Client, cfg APIClientConfig) *http.Client {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	gc := netguard.Config{}
	if guard != nil {
		gc = guard.Guard().Config()
	}
	g := netguard.New(netguard.Config{
		AllowedCIDRs: gc.AllowedCIDRs, Resolve: gc.Resolve, AllowHTTP: gc.AllowHTTP, TLSConfig: gc.TLSConfig,
		ConnectTimeout: cfg.ConnectTimeout, TotalTimeout: cfg.TotalTimeout, ReadTimeout: cfg.TotalTimeout,
		MaxRedirects: cfg.MaxRedirects, MaxBodyBytes: cfg.MaxBodyBytes, MaxIdleConnsPerHost: 2,
	})
	c := g.Client(nil)
	c.Transport = &capBody{next: c.Transport, max: cfg.MaxBodyBytes}
	return c
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
