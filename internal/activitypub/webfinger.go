package activitypub

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Resource is a parsed WebFinger resource: an acct: URI (User, Host) or an http(s) URL.
type Resource struct {
	Scheme string // "acct", "https" or "http"
	User   string // for acct:
	Host   string
	URL    string // the resource as given, normalised
}

// String renders the resource as it is used for subject: "acct:user@host" or the URL.
func (r Resource) String() string {
	if r.Scheme == "acct" {
		return "acct:" + r.User + "@" + r.Host
	}
	return r.URL
}

// ParseResource parses a WebFinger resource parameter (RFC 7033 section 4.1; RFC 7565
// for acct:). A bare "user@host" or "@user@host" is accepted as acct:, as Mastodon does.
func ParseResource(s string) (Resource, error) {
	if len(s) > 1024 {
		return Resource{}, newErr(KindMalformed, "", nil, "resource over 1024 bytes")
	}
	orig := s
	if strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil {
			return Resource{}, newErr(KindMalformed, "", err, "resource %q", orig)
		}
		u.Fragment = ""
		r := Resource{Scheme: u.Scheme, Host: strings.ToLower(u.Host), URL: u.String()}
		if len(r.URL) > 1024 { // percent-encoding can triple what arrived
			return Resource{}, newErr(KindMalformed, "", nil, "resource over 1024 bytes once normalised")
		}
		return r, nil
	}
	if strings.HasPrefix(strings.ToLower(s), "acct:") {
		s = s[5:]
	}
	s = strings.TrimPrefix(s, "@")
	if dec, err := url.PathUnescape(s); err == nil {
		s = dec
	}
	// Refuse what no acct: URI holds and what case folding could grow past the size cap:
	// invalid UTF-8 (folded into 3-byte replacement characters) and control characters.
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return Resource{}, newErr(KindMalformed, "", nil, "resource %q holds invalid UTF-8 or control characters", orig)
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return Resource{}, newErr(KindMalformed, "", nil, "resource %q is not user@host", orig)
	}
	user, host := s[:at], strings.ToLower(s[at+1:])
	if strings.ContainsAny(user, "/?#@: \t\r\n") || strings.ContainsAny(host, "/?#@ \t\r\n\\") {
		return Resource{}, newErr(KindMalformed, host, nil, "resource %q has characters acct: cannot hold", orig)
	}
	if u, err := url.Parse("https://" + host); err != nil || u.Hostname() == "" {
		return Resource{}, newErr(KindMalformed, "", err, "resource host %q", host)
	}
	r := Resource{Scheme: "acct", User: user, Host: host}
	if len(r.String()) > 1024 {
		return Resource{}, newErr(KindMalformed, "", nil, "resource over 1024 bytes once normalised")
	}
	return r, nil
}

// Link is a JRD link.
type Link struct {
	Rel        string            `json:"rel"`
	Type       string            `json:"type,omitempty"`
	Href       string            `json:"href,omitempty"`
	Template   string            `json:"template,omitempty"`
	Titles     map[string]string `json:"titles,omitempty"`
	Properties map[string]any    `json:"properties,omitempty"`
}

// JRD is a JSON Resource Descriptor (RFC 7033 section 4.4).
type JRD struct {
	Subject    string         `json:"subject"`
	Aliases    []string       `json:"aliases,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	Links      []Link         `json:"links"`
}

// SelfLink returns the ActivityPub actor id the JRD points at: the rel=self link of an
// AS2 media type, which is what Mastodon follows.
func (j *JRD) SelfLink() string {
	for _, l := range j.Links {
		if l.Rel != "self" {
			continue
		}
		mt := strings.TrimSpace(strings.SplitN(l.Type, ";", 2)[0])
		if mt == "application/activity+json" || mt == "application/ld+json" {
			return l.Href
		}
	}
	return ""
}

// NewActorJRD builds the JRD Mastodon expects for an actor: subject acct:user@host, the
// actor id as alias and rel=self (application/activity+json), and the profile page.
func NewActorJRD(user, host, actorID, profileURL string) *JRD {
	j := &JRD{Subject: "acct:" + user + "@" + host, Aliases: []string{actorID}}
	if profileURL != "" {
		j.Aliases = append(j.Aliases, profileURL)
		j.Links = append(j.Links, Link{Rel: "http://webfinger.net/rel/profile-page", Type: "text/html", Href: profileURL})
	}
	j.Links = append(j.Links, Link{Rel: "self", Type: "application/activity+json", Href: actorID})
	return j
}

// DecodeJRD parses a remote JRD with the document size cap.
func DecodeJRD(b []byte) (*JRD, error) {
	if len(b) > MaxDocumentBytes {
		return nil, newErr(KindTooLarge, "", nil, "JRD of %d bytes", len(b))
	}
	if d := jsonDepth(b); d > MaxDocumentDepth {
		return nil, newErr(KindMalformed, "", nil, "JRD nested %d levels deep", d)
	}
	var j JRD
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, newErr(KindMalformed, "", err, "JRD")
	}
	if j.Subject == "" {
		return nil, newErr(KindMalformed, "", nil, "JRD without subject")
	}
	return &j, nil
}

// ErrNoSuchResource is what a WebFinger lookup function returns for unknown resources;
// the handler answers 404.
var ErrNoSuchResource = errors.New("activitypub: no such WebFinger resource")

// WebFingerLookup finds the JRD for a resource on this server. The server package
// supplies it from its actors.
type WebFingerLookup func(ctx context.Context, r Resource) (*JRD, error)

// WebFingerHandler serves /.well-known/webfinger (RFC 7033): GET with a resource
// parameter, optional rel filters, JRD with CORS open as section 5 asks.
func WebFingerHandler(lookup WebFingerLookup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		raw := q.Get("resource")
		if raw == "" {
			http.Error(w, "resource parameter required", http.StatusBadRequest)
			return
		}
		res, err := ParseResource(raw)
		if err != nil {
			http.Error(w, "malformed resource", http.StatusBadRequest)
			return
		}
		jrd, err := lookup(r.Context(), res)
		switch {
		case errors.Is(err, ErrNoSuchResource) || (err == nil && jrd == nil):
			http.Error(w, "not found", http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, "lookup failed", http.StatusInternalServerError)
			return
		}
		out := *jrd
		if rels := q["rel"]; len(rels) > 0 {
			out.Links = nil
			for _, l := range jrd.Links {
				if contains(rels, l.Rel) {
					out.Links = append(out.Links, l)
				}
			}
		}
		if out.Links == nil {
			out.Links = []Link{}
		}
		w.Header().Set("Content-Type", "application/jrd+json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(&out)
	})
}

// WebFinger resolves acct:user@host (or a URL resource) on its host through the safe
// client and returns the JRD; the subject's host must be the host asked.
func (c *Client) WebFinger(ctx context.Context, resource string) (*JRD, error) {
	res, err := ParseResource(resource)
	if err != nil {
		return nil, err
	}
	scheme := "https"
	if c.cfg.AllowHTTP && res.Scheme == "http" {
		scheme = "http"
	}
	path := "/.well-known/webfinger?resource=" + url.QueryEscape(res.String())
	resp, err := c.Fetch(ctx, scheme+"://"+res.Host+path, AcceptJRD, []string{"application/jrd+json", "application/json"}, nil)
	if err != nil && scheme == "https" && c.cfg.AllowHTTP && resp == nil {
		// Plain-http peers (local and test setups only): an acct: handle says nothing
		// about the scheme, so try http when https could not even be spoken.
		resp, err = c.Fetch(ctx, "http://"+res.Host+path, AcceptJRD, []string{"application/jrd+json", "application/json"}, nil)
	}
	if err != nil {
		return nil, err
	}
	j, err := DecodeJRD(resp.Body)
	if err != nil {
		return nil, withHost(err, res.Host)
	}
	return j, nil
}
