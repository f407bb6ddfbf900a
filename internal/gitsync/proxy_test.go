package gitsync

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestProxy checks the proxy on its own with Go's client: only its own credentials are
// served (another local process cannot use it to get around the guard), what the remote
// sends is counted, and a response over the cap is cut and reported as ErrTooLarge.
func TestProxy(t *testing.T) {
	body := strings.Repeat("x", 10000)
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != "" {
			t.Errorf("the proxy's credentials reached the remote")
		}
		_, _ = io.WriteString(w, body)
	}))
	defer remote.Close()

	tests := map[string]struct {
		max        int64
		noAuth     bool
		wantStatus int
		wantErr    error
	}{
		"served":         {wantStatus: http.StatusOK},
		"under the cap":  {max: 20000, wantStatus: http.StatusOK},
		"over the cap":   {max: 4000, wantErr: ErrTooLarge},
		"no credentials": {noAuth: true, wantStatus: http.StatusProxyAuthRequired},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := startProxy(t.Context(), loopback(), tc.max)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			proxyURL, _ := url.Parse(p.URL())
			if tc.noAuth {
				proxyURL.User = nil
			}
			client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
			resp, err := client.Get(remote.URL + "/x")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if tc.wantErr != nil {
				if err == nil || !errors.Is(p.Err(), tc.wantErr) {
					t.Fatalf("response error %v, proxy error %v; want the response cut and %v", err, p.Err(), tc.wantErr)
				}
				return
			}
			if err != nil || resp.StatusCode != tc.wantStatus {
				t.Fatalf("GET through the proxy: %v, %v; want status %d", resp, err, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusOK && p.Received() != int64(len(body)) {
				t.Errorf("received %d bytes, want %d", p.Received(), len(body))
			}
		})
	}
}
