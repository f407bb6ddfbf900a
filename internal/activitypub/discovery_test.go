package activitypub

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestParseResource(t *testing.T) {
	tests := map[string]struct {
		in   string
		want string
		ok   bool
	}{
		"acct":              {"acct:releases-group-project@forge.example", "acct:releases-group-project@forge.example", true},
		"acct upper host":   {"acct:alice@Forge.Example", "acct:alice@forge.example", true},
		"bare":              {"alice@forge.example", "acct:alice@forge.example", true},
		"at prefixed":       {"@alice@forge.example", "acct:alice@forge.example", true},
		"escaped at":        {"acct:alice%40forge.example", "acct:alice@forge.example", true},
		"url":               {"https://forge.example/actors/alice", "https://forge.example/actors/alice", true},
		"url with port":     {"https://forge.example:8443/a#frag", "https://forge.example:8443/a", true},
		"slash in user":     {"acct:group/project@forge.example", "", false},
		"no host":           {"acct:alice@", "", false},
		"no user":           {"acct:@forge.example", "", false},
		"empty":             {"", "", false},
		"path in host":      {"acct:alice@forge.example/x", "", false},
		"url with userinfo": {"https://u:p@forge.example/a", "", false},
		"other scheme":      {"mailto:alice@forge.example", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := ParseResource(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if StatusOf(err) != 400 {
					t.Fatalf("status %d", StatusOf(err))
				}
				return
			}
			if r.String() != tc.want {
				t.Fatalf("got %q want %q", r.String(), tc.want)
			}
		})
	}
}

func TestWebFingerRoundTrip(t *testing.T) {
	n := newTestNet()
	var base string
	lookup := func(_ context.Context, r Resource) (*JRD, error) {
		if r.Scheme == "acct" && r.User == "releases-group-project" && r.Host == "forge.example.com" {
			return NewActorJRD(r.User, r.Host, base+"/actors/releases-group-project", "https://git.example.com/group/project"), nil
		}
		if r.URL == base+"/actors/releases-group-project" {
			return NewActorJRD("releases-group-project", "forge.example.com", r.URL, ""), nil
		}
		return nil, ErrNoSuchResource
	}
	mux := http.NewServeMux()
	mux.Handle("/.well-known/webfinger", WebFingerHandler(lookup))
	base = n.serve(t, "forge.example.com", mux)
	c := n.client(true)
	ctx := context.Background()
	jrd, err := c.WebFinger(ctx, "acct:releases-group-project@forge.example.com")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "webfinger.json", indentJSON(t, jrd))
	// Mastodon's round trip: subject acct, rel=self AS2 link, preferredUsername@host back.
	if jrd.Subject != "acct:releases-group-project@forge.example.com" || jrd.SelfLink() != base+"/actors/releases-group-project" {
		t.Fatalf("jrd %+v", jrd)
	}
	if _, err := c.WebFinger(ctx, base+"/actors/releases-group-project"); err != nil {
		t.Fatalf("URL resource: %v", err)
	}
	if _, err := c.WebFinger(ctx, "acct:nobody@forge.example.com"); !isKind(err, KindNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	tests := map[string]struct {
		query  string
		status int
	}{
		"no resource":  {"", 400},
		"bad resource": {"?resource=acct:a/b@forge.example.com", 400},
		"rel filter":   {"?resource=acct:releases-group-project@forge.example.com&rel=self", 200},
		"unknown":      {"?resource=acct:x@forge.example.com", 404},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WebFingerHandler(lookup).ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/webfinger"+tc.query, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d want %d", rec.Code, tc.status)
			}
			if tc.status == 200 {
				j, err := DecodeJRD(rec.Body.Bytes())
				if err != nil || len(j.Links) != 1 || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
					t.Fatalf("%v %+v", err, j)
				}
			}
		})
	}
}

func TestDecodeMastodonWebFinger(t *testing.T) {
	j, err := DecodeJRD(mustRead(t, "fediverse/mastodon-webfinger.json"))
	if err != nil {
		t.Fatal(err)
	}
	if j.SelfLink() != "https://mastodon.social/users/crepels" {
		t.Fatalf("self %q", j.SelfLink())
	}
}

func TestNodeInfoAndHostMeta(t *testing.T) {
	n := newTestNet()
	info := func(context.Context) (NodeInfo, error) {
		return NodeInfo{Software: NodeInfoSoftware{Name: "fedforge", Version: "0.1.0", Repository: "https://github.com/fedforge/fedforge", Homepage: "https://fedforge.dev"},
			Usage: NodeInfoUsage{Users: NodeInfoUsers{Total: 3, ActiveMonth: 2, ActiveHalfyear: 3}, LocalPosts: 10}}, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/.well-known/nodeinfo", NodeInfoDiscoveryHandler("https://forge.example.com"))
	mux.Handle("/nodeinfo/2.0", NodeInfoHandler("2.0", info))
	mux.Handle("/nodeinfo/2.1", NodeInfoHandler("2.1", info))
	mux.Handle("/.well-known/host-meta", HostMetaHandler("https://forge.example.com"))
	mux.Handle("/.well-known/host-meta.json", HostMetaHandler("https://forge.example.com"))
	n.serve(t, "forge.example.com", mux)
	ni, err := n.client(true).FetchNodeInfo(context.Background(), "forge.example.com")
	if err != nil || ni.Version != "2.1" || ni.Software.Name != "fedforge" {
		t.Fatalf("%v %+v", err, ni)
	}
	for _, path := range []string{"/.well-known/nodeinfo", "/nodeinfo/2.0", "/nodeinfo/2.1", "/.well-known/host-meta", "/.well-known/host-meta.json"} {
		t.Run(path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code != 200 {
				t.Fatalf("status %d", rec.Code)
			}
			body, _ := io.ReadAll(rec.Body)
			name := map[string]string{"/.well-known/nodeinfo": "nodeinfo-discovery.json", "/nodeinfo/2.0": "nodeinfo-2.0.json",
				"/nodeinfo/2.1": "nodeinfo-2.1.json", "/.well-known/host-meta": "host-meta.xml", "/.well-known/host-meta.json": "host-meta.json"}[path]
			golden(t, name, body)
			if path == "/nodeinfo/2.0" && bytes.Contains(body, []byte("repository")) {
				t.Fatal("2.0 document carries 2.1 fields")
			}
		})
	}
}

// TestDoubleKnocking checks that outgoing deliveries use RFC 9421 only where it works,
// fall back to cavage on 401, and remember per host.
func TestDoubleKnocking(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	client := n.client(true)
	keys := NewKeyCache(client, nil, KeyCacheConfig{})
	var seen []string
	inbox := func(accept9421, advertise bool) http.Handler {
		v := NewVerifier(keys, 100)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if r.Header.Get("Signature-Input") != "" && !accept9421 {
				seen = append(seen, "rejected-rfc9421")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			ver, err := v.VerifyRequest(r.Context(), r, body)
			if err != nil {
				http.Error(w, err.Error(), StatusOf(err))
				return
			}
			seen = append(seen, ver.Scheme)
			if advertise {
				w.Header().Set("Accept-Signature", `sig1=("@method" "@target-uri" "content-digest");created`)
			}
			w.WriteHeader(http.StatusAccepted)
		})
	}
	oldURL := n.serve(t, "old.example.com", inbox(false, false))
	newURL := n.serve(t, "new.example.com", inbox(true, true))
	signer := &Signer{KeyID: p.base + "/users/alice#main-key", Key: loadPriv(t, "test-key-rsa"), Now: time.Now}
	ctx := context.Background()
	count := 0
	deliver := func(u string) int {
		count++ // distinct bodies: an identical request in the same second is a replay
		resp, err := client.Deliver(ctx, u+"/inbox", []byte(fmt.Sprintf(`{"type":"Note","n":%d}`, count)), signer)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	// A host wrongly believed to take RFC 9421 gets one knock, then cavage, remembered.
	client.ObserveInbound(ctx, "old.example.com", &Verified{Scheme: SchemeRFC9421, Algorithm: AlgRSAv15SHA256}) // it signed RFC 9421 to us
	if s := deliver(oldURL); s != 202 || client.SchemeFor("old.example.com") != SchemeCavage {
		t.Fatalf("old: status %d scheme %s seen %v", s, client.SchemeFor("old.example.com"), seen)
	}
	if s := deliver(oldURL); s != 202 {
		t.Fatalf("old second: %d", s)
	}
	// A host that advertises Accept-Signature is switched to RFC 9421.
	if s := deliver(newURL); s != 202 || client.SchemeFor("new.example.com") != SchemeRFC9421 {
		t.Fatalf("new: %d %s", s, client.SchemeFor("new.example.com"))
	}
	if s := deliver(newURL); s != 202 {
		t.Fatalf("new second: %d", s)
	}
	want := []string{"rejected-rfc9421", SchemeCavage, SchemeCavage, SchemeCavage, SchemeRFC9421}
	if len(seen) != len(want) {
		t.Fatalf("seen %v want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("seen %v want %v", seen, want)
		}
	}
}
