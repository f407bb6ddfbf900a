package activitypub

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// inboxServer is a real HTTP server on loopback whose handler verifies each request
// with v and answers 202, or the error's status and message: Go's server has moved
// the Host field into req.Host by the time the verifier sees it.
func inboxServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			_, err = v.VerifyRequest(r.Context(), r, body)
		}
		if err != nil {
			http.Error(w, err.Error(), StatusOf(err))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fedify2Components is what Fedify 2.x covers in its first RFC 9421 knock.
var fedify2Components = []string{"@method", "@target-uri", "@authority", "host", "date", "content-digest"}

// TestRFC9421CoveredHostOverHTTP signs like Fedify 2 (rsa-v1_5-sha256 over
// fedify2Components) and sends the request to a real server: the covered host field is
// read from req.Host. Before the fix every such request was refused with 400
// "covered header \"host\" is missing".
func TestRFC9421CoveredHostOverHTTP(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	srv := inboxServer(t, NewVerifier(NewKeyCache(n.client(true), nil, KeyCacheConfig{}), 100))
	rsaKey := loadPriv(t, "test-key-rsa")
	alice := p.base + "/users/alice"
	body := []byte(`{"type":"Follow","actor":"` + alice + `"}`)

	sent := 0
	send := func(t *testing.T, comps []string, prepare, mutate func(*http.Request)) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/inbox", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/activity+json")
		req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		if prepare != nil {
			prepare(req)
		}
		err = SignRFC9421(Message{Request: req}, body, rsaKey, RFC9421Options{
			KeyID: alice + "#main-key", Alg: AlgRSAv15SHA256, IncludeAlg: true, Components: comps,
			Nonce: strconv.Itoa(sent)}) // rsa-v1_5 is deterministic: a nonce keeps the replay check out of it
		sent++
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		if mutate != nil {
			mutate(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(msg))
	}

	t.Run("Fedify 2 first knock, Host header set by the signer", func(t *testing.T) {
		// Fedify puts host among the fields it signs; the Go client sends req.Host.
		status, msg := send(t, fedify2Components, func(r *http.Request) { r.Header.Set("Host", r.URL.Host) }, nil)
		if status != http.StatusAccepted {
			t.Fatalf("got %d %q, want 202", status, msg)
		}
	})
	t.Run("our signer covering host", func(t *testing.T) {
		status, msg := send(t, fedify2Components, nil, nil)
		if status != http.StatusAccepted {
			t.Fatalf("got %d %q, want 202", status, msg)
		}
	})
	t.Run("a covered host that differs on the wire", func(t *testing.T) {
		status, msg := send(t, fedify2Components, nil, func(r *http.Request) { r.Host = "evil.example.com" })
		if status != http.StatusUnauthorized {
			t.Fatalf("got %d %q, want 401", status, msg)
		}
	})
	t.Run("another covered header missing stays an error", func(t *testing.T) {
		comps := append(append([]string{}, fedify2Components...), "x-custom")
		status, msg := send(t, comps, func(r *http.Request) { r.Header.Set("X-Custom", "1") }, func(r *http.Request) { r.Header.Del("X-Custom") })
		if status != http.StatusBadRequest || !strings.Contains(msg, `covered header "x-custom" is missing`) {
			t.Fatalf("got %d %q, want 400 naming x-custom", status, msg)
		}
	})
}

// TestRFC9421HostOnAResponse keeps host a plain field on responses: it is not derived
// from the request they answer.
func TestRFC9421HostOnAResponse(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "https://fedforge.example.com/x", nil)
	if err := SignRFC9421(Message{Request: req, Status: 200, Header: http.Header{}}, nil, loadPriv(t, "test-key-ed25519"),
		RFC9421Options{Alg: AlgEd25519RFC, Components: []string{"@status", "host"}}); err == nil {
		t.Fatal("signing a response without a host field succeeded")
	} else if e := (*Error)(nil); !errors.As(err, &e) || e.Kind != KindMalformed {
		t.Fatalf("got %v, want a malformed-request error", err)
	}
}
