package gitsync

import (
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/fedforge/fedforge/internal/netguard"
)

// testHTTPS fetches from forge B over https, as production forges serve: git's libcurl
// asks the proxy for a CONNECT tunnel and does TLS itself, end to end. The tunnel is dialled
// by the guard (refused without loopback allowed, before any connection) and counted (a cap
// below what the fetch took cuts it).
func testHTTPS(t *testing.T, f *forges) {
	u, err := url.Parse(f.b.URL)
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	front.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	front.StartTLS()
	t.Cleanup(front.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	req := f.request("main")
	req.Source.CloneURL = front.URL + "/" + f.alice + "/" + project + ".git"

	req.Source.User = "tls"
	res, err := f.syncer(t, Config{CAFile: caFile}).Mirror(t.Context(), req)
	if err != nil {
		t.Fatalf("mirror over https: %v", err)
	}
	if res.FetchedBytes == 0 || conns.Load() == 0 {
		t.Fatalf("fetched %d bytes over %d connections: the tunnel was not used", res.FetchedBytes, conns.Load())
	}
	if got := f.headOnA(t, res.Branch); got != res.NewHead {
		t.Fatalf("%s on A = %q, want %s", res.Branch, got, res.NewHead)
	}

	req.Source.User = "tls-capped"
	_, err = f.syncer(t, Config{CAFile: caFile, MaxFetchBytes: res.FetchedBytes / 2}).Mirror(t.Context(), req)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("https fetch with half the bytes it needs: %v, want ErrTooLarge", err)
	}

	req.Source.User = "tls-refused"
	before := conns.Load()
	strict := netguard.New(netguard.Config{Resolve: map[string]string{"forge-b.test": front.Listener.Addr().String()}})
	req.Source.CloneURL = "https://forge-b.test/" + f.alice + "/" + project + ".git"
	_, err = f.syncer(t, Config{CAFile: caFile, Source: strict}).Mirror(t.Context(), req)
	if !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("https to a name on loopback without loopback allowed: %v, want netguard.ErrRefused", err)
	}
	if n := conns.Load() - before; n != 0 {
		t.Fatalf("the refused https remote received %d connections", n)
	}
	for _, user := range []string{"tls-capped", "tls-refused"} {
		if got := f.headOnA(t, "federated/forge-b.example/"+user+"/main"); got != "" {
			t.Errorf("refused https fetch for %s pushed %s", user, got)
		}
	}
}
