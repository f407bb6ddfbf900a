package activitypub

import (
	"net/http"
	"net/url"
	"strings"
)

// Message is what an RFC 9421 signature covers: a request, or a response (Status set)
// with the request it answers. It lets the same code serve sig-b24 (a response) and inbox
// requests.
type Message struct {
	Request *http.Request
	Status  int         // for a response; 0 for a request
	Header  http.Header // the response's headers; nil means Request.Header
	// Origin is the public scheme and host under which a receiving server is reached
	// (its configured base URL). When set, @target-uri, @authority and @scheme are built
	// from it and the request's path and query, not from req.TLS and Host: behind a
	// TLS-terminating proxy the request arrives over http while the peer signed https.
	// nil derives them from the request.
	Origin *url.URL
}

// targetURI is the @target-uri of m: from Origin when set, else from the request.
func (m Message) targetURI() string {
	if m.Origin == nil {
		return targetURI(m.Request)
	}
	// Host lowercased and without the default port, as a WHATWG URL parser (Fedify's)
	// writes the URL a peer signs.
	return strings.ToLower(m.Origin.Scheme) + "://" + m.authority() + m.Request.URL.RequestURI()
}

// authority is the @authority of m: Origin's host when set (lowercase, without the
// scheme's default port), else the request's.
func (m Message) authority() string {
	if m.Origin == nil {
		return authority(m.Request)
	}
	h := strings.ToLower(m.Origin.Host)
	switch strings.ToLower(m.Origin.Scheme) {
	case "https":
		h = strings.TrimSuffix(h, ":443")
	case "http":
		h = strings.TrimSuffix(h, ":80")
	}
	return h
}

func (m Message) header() http.Header {
	if m.Header != nil {
		return m.Header
	}
	if m.Request == nil {
		return http.Header{}
	}
	return m.Request.Header
}

// targetURI reconstructs the absolute request URI, on the client (URL is absolute) and
// on the server (scheme from TLS, authority from Host).
func targetURI(req *http.Request) string {
	if req.URL.IsAbs() {
		u := *req.URL
		u.Host = requestHost(req)
		u.Fragment = ""
		return u.String()
	}
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + req.Host + req.URL.RequestURI()
}

func authority(req *http.Request) string {
	h := strings.ToLower(requestHost(req))
	if strings.HasSuffix(h, ":443") && (req.URL.Scheme == "https" || req.TLS != nil) {
		h = strings.TrimSuffix(h, ":443")
	} else if strings.HasSuffix(h, ":80") && req.URL.Scheme == "http" {
		h = strings.TrimSuffix(h, ":80")
	}
	return h
}
