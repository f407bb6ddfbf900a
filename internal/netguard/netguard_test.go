package netguard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	tests := map[string]struct {
		ip      string
		allowed []string
		refused bool
	}{
		"public v4":            {ip: "93.184.216.34"},
		"public v6":            {ip: "2606:2800:220:1:248:1893:25c8:1946"},
		"loopback":             {ip: "127.0.0.1", refused: true},
		"loopback allowed":     {ip: "127.0.0.2", allowed: []string{"127.0.0.0/8"}},
		"private":              {ip: "10.1.2.3", refused: true},
		"private elsewhere ok": {ip: "10.1.2.3", allowed: []string{"192.168.0.0/16"}, refused: true},
		"link-local":           {ip: "169.254.169.254", refused: true},
		"v4-mapped loopback":   {ip: "::ffff:127.0.0.1", refused: true},
		"v6 loopback":          {ip: "::1", refused: true},
		"unique local":         {ip: "fd00::1", refused: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var cidrs []netip.Prefix
			for _, c := range tc.allowed {
				cidrs = append(cidrs, netip.MustParsePrefix(c))
			}
			err := New(Config{AllowedCIDRs: cidrs}).CheckAddr(netip.MustParseAddr(tc.ip))
			if (err != nil) != tc.refused || (err != nil && !errors.Is(err, ErrRefused)) {
				t.Fatalf("CheckAddr(%s) = %v, refused want %v", tc.ip, err, tc.refused)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := map[string]struct {
		url       string
		allowHTTP bool
		refused   bool
	}{
		"https":            {url: "https://example.org/a"},
		"http refused":     {url: "http://example.org/a", refused: true},
		"http allowed":     {url: "http://example.org/a", allowHTTP: true},
		"ftp":              {url: "ftp://example.org/a", allowHTTP: true, refused: true},
		"userinfo":         {url: "https://u:p@example.org/", refused: true},
		"no host":          {url: "https:///path", refused: true},
		"literal loopback": {url: "https://127.0.0.1/", refused: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			u, _ := url.Parse(tc.url)
			err := New(Config{AllowHTTP: tc.allowHTTP}).CheckURL(u)
			if (err != nil) != tc.refused {
				t.Fatalf("CheckURL(%s) = %v, refused want %v", tc.url, err, tc.refused)
			}
		})
	}
}

// TestDialAfterResolution reaches a real server on loopback: refused by default (the name
// maps to a loopback address only after DNS, as a rebinding name would), reached when
// the range is allowed, and redirects are re-checked and bounded.
func TestDialAfterResolution(t *testing.T) {
	hops := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/loop":
			hops++
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	resolve := map[string]string{"peer.test": addr}

	refused := New(Config{AllowHTTP: true, Resolve: resolve, ConnectTimeout: time.Second})
	if _, err := refused.Client(nil).Get("http://peer.test/"); !errors.Is(err, ErrRefused) {
		t.Fatalf("a name resolving to loopback was dialled: %v", err)
	}
	allowed := New(Config{AllowHTTP: true, Resolve: resolve, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, MaxRedirects: 2})
	resp, err := allowed.Client(nil).Get("http://peer.test/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("allowed range: %v, %v", resp, err)
	}
	resp.Body.Close()
	if _, err := allowed.Client(nil).Get("http://peer.test/loop"); !errors.Is(err, ErrRefused) || hops != 3 {
		t.Fatalf("redirect loop: %v after %d hops, want a refusal after 3", err, hops)
	}
}
