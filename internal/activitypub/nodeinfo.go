package activitypub

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
)

// NodeInfo schema IRIs (rel values of /.well-known/nodeinfo links).
const (
	NodeInfo20Schema = "http://nodeinfo.diaspora.software/ns/schema/2.0"
	NodeInfo21Schema = "http://nodeinfo.diaspora.software/ns/schema/2.1"
)

// NodeInfoSoftware names the server software; Forgejo accepts remote people only when
// it reads a name it knows here.
type NodeInfoSoftware struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Repository string `json:"repository,omitempty"` // 2.1 only
	Homepage   string `json:"homepage,omitempty"`   // 2.1 only
}

// NodeInfoUsers counts users for the usage section.
type NodeInfoUsers struct {
	Total          int `json:"total"`
	ActiveMonth    int `json:"activeMonth"`
	ActiveHalfyear int `json:"activeHalfyear"`
}

// NodeInfoUsage is the usage section.
type NodeInfoUsage struct {
	Users      NodeInfoUsers `json:"users"`
	LocalPosts int           `json:"localPosts"`
}

// NodeInfoServices lists third-party services the node talks to (none for us).
type NodeInfoServices struct {
	Inbound  []string `json:"inbound"`
	Outbound []string `json:"outbound"`
}

// NodeInfo is a NodeInfo 2.0/2.1 document.
type NodeInfo struct {
	Version           string           `json:"version"`
	Software          NodeInfoSoftware `json:"software"`
	Protocols         []string         `json:"protocols"`
	Services          NodeInfoServices `json:"services"`
	OpenRegistrations bool             `json:"openRegistrations"`
	Usage             NodeInfoUsage    `json:"usage"`
	Metadata          map[string]any   `json:"metadata"`
}

// NodeInfoLinks is the /.well-known/nodeinfo discovery document.
type NodeInfoLinks struct {
	Links []Link `json:"links"`
}

// NodeInfoDiscoveryHandler serves /.well-known/nodeinfo, pointing at baseURL +
// /nodeinfo/2.0 and /nodeinfo/2.1.
func NodeInfoDiscoveryHandler(baseURL string) http.Handler {
	baseURL = strings.TrimSuffix(baseURL, "/")
	doc := NodeInfoLinks{Links: []Link{
		{Rel: NodeInfo20Schema, Href: baseURL + "/nodeinfo/2.0"},
		{Rel: NodeInfo21Schema, Href: baseURL + "/nodeinfo/2.1"},
	}}
	return jsonHandler("application/json", func(*http.Request) (any, error) { return doc, nil })
}

// NodeInfoHandler serves the NodeInfo document of version "2.0" or "2.1" from the
// server's current figures. Fields that 2.0 does not define are dropped for 2.0.
func NodeInfoHandler(version string, info func(ctx context.Context) (NodeInfo, error)) http.Handler {
	ct := `application/json; profile="` + NodeInfo21Schema + `#"`
	if version == "2.0" {
		ct = `application/json; profile="` + NodeInfo20Schema + `#"`
	}
	return jsonHandler(ct, func(r *http.Request) (any, error) {
		ni, err := info(r.Context())
		if err != nil {
			return nil, err
		}
		ni.Version = version
		if version == "2.0" {
			ni.Software.Repository, ni.Software.Homepage = "", ""
		}
		if ni.Protocols == nil {
			ni.Protocols = []string{"activitypub"}
		}
		if ni.Services.Inbound == nil {
			ni.Services.Inbound = []string{}
		}
		if ni.Services.Outbound == nil {
			ni.Services.Outbound = []string{}
		}
		if ni.Metadata == nil {
			ni.Metadata = map[string]any{}
		}
		return ni, nil
	})
}

func jsonHandler(contentType string, build func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		v, err := build(r)
		if err != nil {
			http.Error(w, "unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", contentType)
		_ = json.NewEncoder(w).Encode(v)
	})
}

// FetchNodeInfo discovers and fetches a host's NodeInfo, preferring 2.1 over 2.0. The
// document link must stay on the host asked.
func (c *Client) FetchNodeInfo(ctx context.Context, host string) (*NodeInfo, error) {
	return c.fetchNodeInfo(ctx, "https", host)
}

// fetchNodeInfo is FetchNodeInfo over scheme (http only where the client allows plain
// http, as for the request that needs a signature profile).
func (c *Client) fetchNodeInfo(ctx context.Context, scheme, host string) (*NodeInfo, error) {
	if scheme != "http" {
		scheme = "https"
	}
	resp, err := c.Fetch(ctx, scheme+"://"+host+"/.well-known/nodeinfo", "application/json", []string{"application/json", "application/jrd+json"}, nil)
	if err != nil {
		return nil, err
	}
	var links NodeInfoLinks
	if jsonDepth(resp.Body) > MaxDocumentDepth || json.Unmarshal(resp.Body, &links) != nil {
		return nil, newErr(KindMalformed, host, nil, "nodeinfo discovery document")
	}
	href := ""
	for _, want := range []string{NodeInfo21Schema, NodeInfo20Schema} {
		for _, l := range links.Links {
			if strings.TrimSuffix(l.Rel, "#") == want && href == "" {
				href = l.Href
			}
		}
	}
	if href == "" || !sameHost(href, scheme+"://"+host) {
		return nil, newErr(KindMalformed, host, nil, "no NodeInfo 2.x link on %s", host)
	}
	resp, err = c.Fetch(ctx, href, "application/json", []string{"application/json"}, nil)
	if err != nil {
		return nil, err
	}
	var ni NodeInfo
	if jsonDepth(resp.Body) > MaxDocumentDepth || json.Unmarshal(resp.Body, &ni) != nil {
		return nil, newErr(KindMalformed, host, nil, "NodeInfo document")
	}
	return &ni, nil
}

// HostMetaHandler serves /.well-known/host-meta (XRD, RFC 6415) and, for paths ending
// in .json or clients asking for JSON, host-meta.json, both pointing at WebFinger.
func HostMetaHandler(baseURL string) http.Handler {
	tmpl := strings.TrimSuffix(baseURL, "/") + "/.well-known/webfinger?resource={uri}"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if strings.HasSuffix(r.URL.Path, ".json") || strings.Contains(r.Header.Get("Accept"), "json") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"links": []Link{{Rel: "lrdd", Template: tmpl}}})
			return
		}
		w.Header().Set("Content-Type", "application/xrd+xml; charset=utf-8")
		type xLink struct {
			Rel      string `xml:"rel,attr"`
			Type     string `xml:"type,attr,omitempty"`
			Template string `xml:"template,attr"`
		}
		type xrd struct {
			XMLName xml.Name `xml:"http://docs.oasis-open.org/ns/xri/xrd-1.0 XRD"`
			Links   []xLink  `xml:"Link"`
		}
		_, _ = w.Write([]byte(xml.Header))
		_ = xml.NewEncoder(w).Encode(xrd{Links: []xLink{{Rel: "lrdd", Type: "application/jrd+json", Template: tmpl}}})
	})
}
