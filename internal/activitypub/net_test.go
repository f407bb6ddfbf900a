package activitypub

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// testNet is a set of real HTTPS servers on 127.0.0.1, each reachable under a name in
// *.example.com (the names httptest's certificate covers) through the Client's static
// resolver map.
type testNet struct {
	resolve map[string]string
	roots   *x509.CertPool
}

func newTestNet() *testNet {
	return &testNet{resolve: map[string]string{}, roots: x509.NewCertPool()}
}

// serve starts an HTTPS server for host and returns its base URL.
func (n *testNet) serve(t *testing.T, host string, h http.Handler) string {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	n.resolve[host] = strings.TrimPrefix(srv.URL, "https://")
	n.roots.AddCert(srv.Certificate())
	return "https://" + host
}

// client returns a Client that may reach loopback (where the test servers are).
func (n *testNet) client(allowLoopback bool) *Client {
	cfg := ClientConfig{Version: "test", InstanceHost: "fedforge.example.com", Resolve: n.resolve}
	cfg.TLSConfig = tlsConfigWithRoots(n.roots)
	if allowLoopback {
		cfg.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	return NewClient(cfg)
}
