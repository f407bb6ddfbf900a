package activitypub

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClientRefusesSpecialAddresses(t *testing.T) {
	n := newTestNet()
	base := n.serve(t, "peer.example.com", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/activity+json")
		_, _ = w.Write([]byte(`{"id":"https://peer.example.com/a","type":"Note"}`))
	}))
	n.resolve["private.example.com"] = "10.1.2.3:443"
	n.resolve["cgnat.example.com"] = "100.64.0.1"
	n.resolve["linklocal.example.com"] = "169.254.169.254"
	n.resolve["v6loop.example.com"] = "[::1]:443"
	n.resolve["mapped.example.com"] = "[::ffff:127.0.0.1]:443"
	refusing := n.client(false)
	tests := map[string]struct {
		url  string
		kind Kind
	}{
		"loopback via name":     {base + "/a", KindForbidden},
		"loopback literal":      {"https://127.0.0.1/a", KindForbidden},
		"private":               {"https://private.example.com/a", KindForbidden},
		"cgnat":                 {"https://cgnat.example.com/a", KindForbidden},
		"link-local (metadata)": {"https://linklocal.example.com/latest/meta-data", KindForbidden},
		"ipv6 loopback":         {"https://v6loop.example.com/a", KindForbidden},
		"ipv4-mapped loopback":  {"https://mapped.example.com/a", KindForbidden},
		"unspecified literal":   {"https://0.0.0.0/a", KindForbidden},
		"multicast literal":     {"https://[ff02::1]/a", KindForbidden},
		"plain http":            {"http://peer.example.com/a", KindForbidden},
		"file scheme":           {"file:///etc/passwd", KindForbidden},
		"credentials in URL":    {"https://user:pw@peer.example.com/a", KindForbidden},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := refusing.FetchObject(context.Background(), tc.url, nil)
			if !isKind(err, tc.kind) || StatusOf(err) != http.StatusForbidden {
				t.Fatalf("got %v, want %s/403", err, tc.kind)
			}
		})
	}
	t.Run("allowed by CIDR", func(t *testing.T) {
		o, err := n.client(true).FetchObject(context.Background(), base+"/a", nil)
		if err != nil || o.ID != "https://peer.example.com/a" {
			t.Fatalf("%v %+v", err, o)
		}
	})
}

func TestClientLimits(t *testing.T) {
	n := newTestNet()
	var gotUA string
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		gotUA = r.Header.Get("User-Agent")
		w.Header().Set("Content-Type", `application/ld+json; profile="https://www.w3.org/ns/activitystreams"`)
		_, _ = w.Write([]byte(`{"id":"https://peer.example.com/ok","type":"Note"}`))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/activity+json")
		_, _ = w.Write([]byte(`{"content":"` + strings.Repeat("a", MaxDocumentBytes) + `"}`))
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<html></html>`))
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/two", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/one", http.StatusFound) })
	mux.HandleFunc("/one", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/to-metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://169.254.169.254/latest", http.StatusFound)
	})
	mux.HandleFunc("/spoof", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/activity+json")
		_, _ = w.Write([]byte(`{"id":"https://mastodon.social/users/Gargron","type":"Person"}`))
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
	base := n.serve(t, "peer.example.com", mux)
	c := n.client(true)
	tests := map[string]struct {
		path   string
		kind   Kind
		status int
	}{
		"ok":                   {"/ok", "", 200},
		"two redirects":        {"/two", "", 200},
		"redirect loop":        {"/loop", KindForbidden, 403},
		"redirect to metadata": {"/to-metadata", KindForbidden, 403},
		"body over 1 MiB":      {"/big", KindTooLarge, 413},
		"wrong content type":   {"/html", KindMalformed, 400},
		"id on another host":   {"/spoof", KindWrongOwner, 401},
		"gone":                 {"/gone", KindNotFound, 404},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := c.FetchObject(context.Background(), base+tc.path, nil)
			if tc.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !isKind(err, tc.kind) || StatusOf(err) != tc.status {
				t.Fatalf("got %v (status %d), want %s/%d", err, StatusOf(err), tc.kind, tc.status)
			}
			var e *Error
			if !asErr(err, &e) || e.Host == "" {
				t.Fatalf("error does not name the host: %v", err)
			}
		})
	}
	if gotUA != "fedforge/test (+https://fedforge.example.com/)" {
		t.Fatalf("User-Agent %q", gotUA)
	}
}

func TestCheckAddr(t *testing.T) {
	c := NewClient(ClientConfig{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}})
	tests := map[string]struct {
		ip string
		ok bool
	}{
		"public v4":         {"93.184.216.34", true},
		"public v6":         {"2606:4700::1111", true},
		"allowed private":   {"10.9.1.1", true},
		"private":           {"192.168.1.1", false},
		"172.16/12":         {"172.31.255.255", false},
		"benchmarking":      {"198.18.0.1", false},
		"reserved 240/4":    {"240.0.0.1", false},
		"broadcast":         {"255.255.255.255", false},
		"ula v6":            {"fd00::1", false},
		"nat64 of loopback": {"64:ff9b::7f00:1", false},
		"6to4":              {"2002:7f00:1::", false},
		"documentation v6":  {"2001:db8::1", false},
		"mapped private v4": {"::ffff:10.0.0.1", false},
		"unspecified v6":    {"::", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := c.Guard().CheckAddr(netip.MustParseAddr(tc.ip))
			if (err == nil) != tc.ok {
				t.Fatalf("CheckAddr(%s) = %v, want ok=%v", tc.ip, err, tc.ok)
			}
		})
	}
}

// TestUserAgentNamesTheHost: remote admins identify us by the User-Agent's host, which
// must be the server's public host (it read "+https:///" when the server passed none).
func TestUserAgentNamesTheHost(t *testing.T) {
	got := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.UserAgent() }))
	defer srv.Close()
	c := NewClient(ClientConfig{Version: "1.2.3", InstanceHost: "forge.example.org", AllowHTTP: true,
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if _, err := c.Do(context.Background(), http.MethodGet, srv.URL, nil, "", "", nil); err != nil {
		t.Fatal(err)
	}
	if want := "fedforge/1.2.3 (+https://forge.example.org/)"; got != want {
		t.Fatalf("User-Agent %q, want %q", got, want)
	}
}

// TestDeliverSendsTheURLItSigned: the request is built from the inbox URL as Do parsed
// it (not formatted and parsed again), so the request line, the Host header and the
// signed (request-target) must still be exactly the inbox's, escapes and query included.
func TestDeliverSendsTheURLItSigned(t *testing.T) {
	key := loadPriv(t, "test-key-rsa")
	v := NewVerifier(staticKeys{k: &RemoteKey{ID: "http://alice.example.com/users/alice#main-key", Owner: "http://alice.example.com/users/alice", Key: key.Public()}}, 100)
	type seen struct {
		uri, host string
		err       error
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, err := v.VerifyRequest(r.Context(), r, body)
		got <- seen{uri: r.RequestURI, host: r.Host, err: err}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	c := NewClient(ClientConfig{Version: "test", InstanceHost: "fedforge.example.com", AllowHTTP: true,
		Resolve:      map[string]string{"inbox.example.com": strings.TrimPrefix(srv.URL, "http://")},
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	signer := &Signer{KeyID: "http://alice.example.com/users/alice#main-key", Key: key}
	const path = "/users/b%2Fob/inbox?x=1&y=%20z"
	resp, err := c.Deliver(context.Background(), "http://inbox.example.com:"+port+path, []byte(`{"type":"Note"}`), signer)
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if resp.Status != http.StatusAccepted || s.err != nil {
		t.Fatalf("status %d, verify: %v", resp.Status, s.err)
	}
	if s.uri != path || s.host != "inbox.example.com:"+port {
		t.Fatalf("request line %q, Host %q: want %q and inbox.example.com:%s", s.uri, s.host, path, port)
	}
	if want := "http://inbox.example.com:" + port + path; resp.FinalURL != want {
		t.Fatalf("FinalURL %q, want %q", resp.FinalURL, want)
	}
}
