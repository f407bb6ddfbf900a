package activitypub

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/fedforge/fedforge/internal/netguard"
)

// Accept headers we send, in the forms Mastodon and GoToSocial negotiate on.
const (
	AcceptActivity = `application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"`
	AcceptJRD      = "application/jrd+json, application/json"
)

// ClientConfig configures the one outbound client. Zero durations and sizes take
// Mastodon's limits.
type ClientConfig struct {
	Version      string // fedforge version for the User-Agent
	InstanceHost string // our public host for the User-Agent
	// AllowedCIDRs lets the dialer reach special ranges (loopback, private...) that are
	// refused otherwise; for local mode and tests, never needed on the Internet.
	AllowedCIDRs []netip.Prefix
	// Resolve maps host names to "ip" or "ip:port", like curl --resolve, so that several
	// instances with real names can run on 127.0.0.x. Mapped addresses are still checked.
	Resolve map[string]string
	// TLSConfig is used for HTTPS (tests pass the httptest CA); nil means the system roots.
	TLSConfig *tls.Config
	// AllowHTTP permits plain-http URLs (local mode only).
	AllowHTTP bool

	ConnectTimeout time.Duration // default 5 s
	ReadTimeout    time.Duration // per read/write on the connection, default 10 s
	TotalTimeout   time.Duration // whole exchange, default 30 s
	MaxRedirects   int           // default 3
	MaxBodyBytes   int64         // default 1 MiB
	// KnockHosts bounds how many hosts the signature-profile memory keeps (default 10000).
	KnockHosts int
	// Profiles persists the signature profile learnt per host (the store); nil keeps
	// them in memory only.
	Profiles ProfileStore
	// NodeInfoProfiles lets the first signed request to a host with no known profile
	// read the host's NodeInfo and take the profile its software is known to verify
	// (ProfileForSoftware).
	NodeInfoProfiles bool
	// Log receives profile changes (V(1)) and store errors; the zero value discards.
	Log logr.Logger
}

// Client is the only way Fedforge talks to remote servers: every fetch and delivery goes
// through its dialer (which refuses special addresses), its timeouts, its redirect and
// body limits and its signing. It is safe for concurrent use.
type Client struct {
	cfg       ClientConfig
	guard     *netguard.Guard
	userAgent string
	profiles  *profileMemory
	pins      atomic.Pointer[func(host string) (SignatureProfile, bool)]
}

// NewClient builds a Client from cfg.
func NewClient(cfg ClientConfig) *Client {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = MaxDocumentBytes
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	c := &Client{cfg: cfg, profiles: newProfileMemory(cfg.KnockHosts)}
	c.userAgent = fmt.Sprintf("fedforge/%s (+https://%s/)", cfg.Version, cfg.InstanceHost)
	c.guard = netguard.New(netguard.Config{
		AllowedCIDRs: cfg.AllowedCIDRs, Resolve: cfg.Resolve, AllowHTTP: cfg.AllowHTTP, TLSConfig: cfg.TLSConfig,
		ConnectTimeout: cfg.ConnectTimeout, ReadTimeout: cfg.ReadTimeout, TotalTimeout: cfg.TotalTimeout,
		MaxRedirects: cfg.MaxRedirects, MaxBodyBytes: cfg.MaxBodyBytes,
	})
	// The guard's defaults (Mastodon's limits) are the client's.
	g := c.guard.Config()
	c.cfg.ConnectTimeout, c.cfg.ReadTimeout, c.cfg.TotalTimeout, c.cfg.MaxRedirects = g.ConnectTimeout, g.ReadTimeout, g.TotalTimeout, g.MaxRedirects
	return c
}

// UserAgent is the User-Agent we send, "fedforge/<version> (+https://<host>/)", so that
// remote admins can identify and contact us.
func (c *Client) UserAgent() string { return c.userAgent }

// Guard is the client's network guard (internal/netguard), for other transports that
// must reach peers the way this client does (feeds, forge APIs).
func (c *Client) Guard() *netguard.Guard { return c.guard }

// Signer signs outgoing requests for one local actor. Key is a crypto.Signer from
// ParsePrivateKeyPEM, the RSA key published as publicKey (KeyID <actor>#main-key): what
// cavage and RFC 9421 rsa-v1_5-sha256 sign with. Ed25519, when set, is the key published
// as an FEP-521a Multikey (Ed25519KeyID <actor>#ed25519-key), used for the
// ProfileRFC9421Ed25519 profile only.
type Signer struct {
	KeyID        string
	Key          crypto.Signer
	Ed25519      crypto.Signer
	Ed25519KeyID string
	// Now pins the signing time in tests; nil means time.Now.
	Now func() time.Time
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Response is a bounded, fully read response.
type Response struct {
	Status   int
	Header   http.Header
	Body     []byte
	FinalURL string
	Scheme   string // the signature scheme used (SchemeCavage, SchemeRFC9421 or "")
	// Profile is the signature profile of the request that got this answer ("" unsigned).
	Profile SignatureProfile
}

// checkURL refuses URLs we never fetch (internal/netguard's CheckURL), as an *Error.
func (c *Client) checkURL(u *url.URL) error {
	if err := c.guard.CheckURL(u); err != nil {
		return newErr(KindForbidden, u.Hostname(), err, "URL refused")
	}
	return nil
}

// Do sends one request: GET when body is nil, POST otherwise, signed by signer when it is
// not nil, following at most MaxRedirects redirects (each re-checked and re-signed), and
// reading at most MaxBodyBytes. A non-2xx status is returned in Response, not as an error;
// errors are *Error values naming the remote host.
func (c *Client) Do(ctx context.Context, method, rawURL string, body []byte, accept, contentType string, signer *Signer) (*Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, newErr(KindMalformed, "", err, "URL %q", rawURL)
	}
	if err := c.checkURL(u); err != nil {
		return nil, err
	}
	if signer == nil {
		return c.do(ctx, method, u, body, accept, contentType, nil, "", nil)
	}
	return c.knock(ctx, method, u, body, accept, contentType, signer)
}

func (c *Client) do(ctx context.Context, method string, u *url.URL, body []byte, accept, contentType string, signer *Signer, profile SignatureProfile, ch *challenge) (*Response, error) {
	host := u.Hostname()
	newReq := func(u *url.URL) (*http.Request, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := newRequest(ctx, method, u, rd)
		if err != nil {
			return nil, newErr(KindMalformed, u.Hostname(), err, "request")
		}
		req.Header.Set("User-Agent", c.userAgent)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if contentType != "" && body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		if signer != nil {
			if err := c.sign(req, body, signer, profile, ch); err != nil {
				return nil, err
			}
		}
		return req, nil
	}
	req, err := newReq(u)
	if err != nil {
		return nil, err
	}
	hc := c.guard.Client(func(r *http.Request) error {
		if signer != nil {
			// Re-sign for the new target: (request-target) and host changed.
			r.Header.Del("Signature")
			r.Header.Del("Signature-Input")
			r.Header.Del("Date")
			return c.sign(r, nil, signer, profile, nil)
		}
		return nil
	})
	resp, err := hc.Do(req)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, withHost(e, host)
		}
		if errors.Is(err, netguard.ErrRefused) {
			return nil, newErr(KindForbidden, host, err, "%s %s", method, u.Redacted())
		}
		return nil, newErr(KindRemote, host, err, "%s %s", method, u.Redacted())
	}
	defer resp.Body.Close()
	scheme := ""
	if signer != nil {
		scheme = profile.Scheme()
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, newErr(KindRemote, host, err, "reading body")
	}
	if int64(len(data)) > c.cfg.MaxBodyBytes {
		return nil, newErr(KindTooLarge, host, nil, "response body over %d bytes", c.cfg.MaxBodyBytes)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data, FinalURL: resp.Request.URL.String(), Scheme: scheme, Profile: profile}, nil
}

// newRequest is http.NewRequestWithContext for a URL parsed already: it takes a copy of
// u instead of formatting it and parsing the string again (every delivery's inbox URL
// was parsed twice, once in Do and once here). The Host field is set as
// NewRequestWithContext sets it (a trailing ":" of an empty port dropped).
func newRequest(ctx context.Context, method string, u *url.URL, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, "", body)
	if err != nil {
		return nil, err
	}
	uc := *u
	uc.Host = strings.TrimSuffix(uc.Host, ":")
	req.URL, req.Host = &uc, uc.Host
	return req, nil
}

// Fetch GETs rawURL (signed when signer is set, for authorized fetch), requires a 2xx
// status and one of the given media types, and returns the body.
func (c *Client) Fetch(ctx context.Context, rawURL, accept string, mediaTypes []string, signer *Signer) (*Response, error) {
	resp, err := c.Do(ctx, http.MethodGet, rawURL, nil, accept, "", signer)
	if err != nil {
		return nil, err
	}
	host := hostOf(resp.FinalURL)
	switch {
	case resp.Status == http.StatusNotFound || resp.Status == http.StatusGone:
		return resp, newErr(KindNotFound, host, nil, "%s answered %d", rawURL, resp.Status)
	case resp.Status < 200 || resp.Status > 299:
		e := newErr(KindRemote, host, nil, "%s answered %d", rawURL, resp.Status)
		e.RemoteStatus = resp.Status
		return resp, e
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !contains(mediaTypes, mt) {
		return resp, newErr(KindMalformed, host, err, "content type %q is not one of %v", resp.Header.Get("Content-Type"), mediaTypes)
	}
	return resp, nil
}

// FetchObject dereferences an ActivityPub object and returns it only when it was served
// from its own id (the provenance rule in docs/decisions.md, Mastodon's since
// CVE-2024-23832): the document's id must equal the URL it was finally served from, after
// redirects. When it does not, and the id is on the same host, the document is fetched
// once more from the id it claims, and that copy must be served from exactly that id. A
// document without id, or claiming an id on another host, is refused. So a file that
// anyone can upload to a host can never speak for an actor of that host.
func (c *Client) FetchObject(ctx context.Context, iri string, signer *Signer) (*Object, error) {
	o, final, err := c.fetchObjectOnce(ctx, iri, signer)
	if err != nil {
		return nil, err
	}
	if sameIRI(o.ID, final) {
		return o, nil
	}
	host := hostOf(final)
	switch {
	case o.ID == "":
		return nil, newErr(KindWrongOwner, host, nil, "document at %s has no id", final)
	case !sameHost(o.ID, final):
		return nil, newErr(KindWrongOwner, host, nil, "document id %s is not on %s", o.ID, host)
	}
	claimed := o.ID
	o, final, err = c.fetchObjectOnce(ctx, claimed, signer)
	if err != nil {
		return nil, err
	}
	if o.ID != claimed || !sameIRI(claimed, final) {
		return nil, newErr(KindWrongOwner, host, nil, "document claiming id %s is not served from it (served from %s with id %q)", claimed, final, o.ID)
	}
	return o, nil
}

// fetchObjectOnce GETs and decodes one document, returning it with the URL it was
// finally served from.
func (c *Client) fetchObjectOnce(ctx context.Context, iri string, signer *Signer) (*Object, string, error) {
	resp, err := c.Fetch(ctx, iri, AcceptActivity, []string{"application/activity+json", "application/ld+json"}, signer)
	if err != nil {
		return nil, "", err
	}
	o, err := DecodeObject(resp.Body)
	if err != nil {
		return nil, "", withHost(err, hostOf(resp.FinalURL))
	}
	return o, resp.FinalURL, nil
}

// Deliver POSTs an activity to an inbox, signed. The Response carries the remote status
// so that the delivery queue can decide whether to retry.
func (c *Client) Deliver(ctx context.Context, inbox string, activity []byte, signer *Signer) (*Response, error) {
	return c.Do(ctx, http.MethodPost, inbox, activity, AcceptActivity, "application/activity+json", signer)
}

// tlsConfigWithRoots returns a TLS configuration trusting only roots (tests, private CAs).
func tlsConfigWithRoots(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}
