package feed

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/fedforge/fedforge/internal/netguard"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// Validators are the HTTP cache validators of the last successful fetch of a feed,
// sent back so that an unchanged feed costs the forge a 304 and us nothing.
type Validators struct {
	ETag         string
	LastModified string
}

// FeedResponse is the outcome of one conditional GET of a feed.
type FeedResponse struct {
	// NotModified is set for a 304; Body is then empty.
	NotModified bool
	// Body is the feed document.
	Body []byte
	// ETag and LastModified are the validators to send next time.
	ETag, LastModified string
}

// FeedFetcher performs one conditional GET of a feed. The poller depends on this
// interface so that tests and other transports can stand in.
type FeedFetcher interface {
	FetchFeed(ctx context.Context, rawURL string, v Validators) (*FeedResponse, error)
}

// FeedFetcherConfig configures NewFeedFetcher. Zero values take the limits of the
// activitypub client (Mastodon's), except the body cap, which is larger because a
// releases feed carries full release notes.
type FeedFetcherConfig struct {
	// UserAgent is sent with every request; empty means the guard client's.
	UserAgent string
	// AllowHTTP permits plain-http feed URLs (local mode and tests).
	AllowHTTP bool
	// TLSConfig is used for HTTPS; nil means the system roots.
	TLSConfig *tls.Config
	// ConnectTimeout, ReadTimeout and TotalTimeout default to 5 s, 10 s and 30 s.
	ConnectTimeout, ReadTimeout, TotalTimeout time.Duration
	// MaxRedirects defaults to 3.
	MaxRedirects int
	// MaxBodyBytes defaults to 4 MiB.
	MaxBodyBytes int64
}

// HTTPFeedFetcher fetches feeds over HTTP with conditional requests. Every address it
// connects to, after DNS and on every redirect, is checked by internal/netguard with the
// activitypub client's allowed ranges, so a feed URL cannot reach loopback, private or link-local addresses unless
// the server's configuration allows them; the same rule as every other outbound request.
type HTTPFeedFetcher struct {
	cfg    FeedFetcherConfig
	guard  *netguard.Guard
	client *http.Client
}

// feedAccept asks for the feed formats gofeed reads.
const feedAccept = "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"

// NewFeedFetcher builds a fetcher whose dialer refuses the addresses guard refuses.
//
// It has its own transport rather than using guard.Fetch because that method sends no
// request headers of the caller's choosing, and conditional GETs need If-None-Match and
// If-Modified-Since (and must see a 304 as success, not an error).
func NewFeedFetcher(guard *activitypub.Client, cfg FeedFetcherConfig) *HTTPFeedFetcher {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.UserAgent == "" && guard != nil {
		cfg.UserAgent = guard.UserAgent()
	}
	// The same network guard as every outbound request (internal/netguard): the client's
	// allowed ranges and --resolve mapping, with the feed's own limits.
	gc := netguard.Config{}
	if guard != nil {
		gc = guard.Guard().Config()
	}
	g := netguard.New(netguard.Config{
		AllowedCIDRs: gc.AllowedCIDRs, Resolve: gc.Resolve, AllowHTTP: cfg.AllowHTTP, TLSConfig: cfg.TLSConfig,
		ConnectTimeout: cfg.ConnectTimeout, ReadTimeout: cfg.ReadTimeout, TotalTimeout: cfg.TotalTimeout,
		MaxRedirects: cfg.MaxRedirects, MaxBodyBytes: cfg.MaxBodyBytes, MaxIdleConnsPerHost: 2,
	})
	// The guard's defaults (Mastodon's limits) are the fetcher's, but for the body cap.
	gd := g.Config()
	cfg.ConnectTimeout, cfg.ReadTimeout, cfg.TotalTimeout, cfg.MaxRedirects = gd.ConnectTimeout, gd.ReadTimeout, gd.TotalTimeout, gd.MaxRedirects
	f := &HTTPFeedFetcher{cfg: cfg, guard: g, client: g.Client(nil)}
	return f
}

func (f *HTTPFeedFetcher) checkURL(u *url.URL) error {
	if err := f.guard.CheckURL(u); err != nil {
		return fmt.Errorf("feed: feed URL: %w", err)
	}
	return nil
}

// FetchFeed GETs rawURL, sending the validators of the previous fetch, and reads at most
// MaxBodyBytes. A 304 is a NotModified response; any other non-2xx status is an error.
func (f *HTTPFeedFetcher) FetchFeed(ctx context.Context, rawURL string, v Validators) (*FeedResponse, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("feed: feed URL: %w", err)
	}
	if err := f.checkURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("feed: feed request: %w", err)
	}
	req.Header.Set("Accept", feedAccept)
	if f.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", f.cfg.UserAgent)
	}
	if v.ETag != "" {
		req.Header.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		req.Header.Set("If-Modified-Since", v.LastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("feed: fetching feed from %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return &FeedResponse{NotModified: true, ETag: cmp.Or(resp.Header.Get("ETag"), v.ETag),
			LastModified: cmp.Or(resp.Header.Get("Last-Modified"), v.LastModified)}, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("feed: feed %s answered %d", u.Redacted(), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("feed: reading feed from %s: %w", u.Host, err)
	}
	if int64(len(body)) > f.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("feed: feed %s is over %d bytes", u.Redacted(), f.cfg.MaxBodyBytes)
	}
	return &FeedResponse{Body: body, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}, nil
}
