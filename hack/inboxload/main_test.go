package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

func TestLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", "127.3.4.5:1", "[::1]:80"} {
		if err := loopback(ok); err != nil {
			t.Errorf("loopback(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1:80", "example.org:443", "0.0.0.0:80", "[2001:db8::1]:80", ""} {
		if err := loopback(bad); err == nil {
			t.Errorf("loopback(%q) = nil, want a refusal", bad)
		}
	}
}

// TestRunSendsDistinctSignedPosts runs the tool against a loopback inbox that records
// what arrives: every POST is signed with the chosen scheme, ids are distinct, and the
// warm-up sends one POST per actor before the counted run.
func TestRunSendsDistinctSignedPosts(t *testing.T) {
	for _, sig := range []string{"cavage", "rfc9421-rsa", "rfc9421-ed25519"} {
		t.Run(sig, func(t *testing.T) {
			var mu sync.Mutex
			ids := map[string]int{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				var act struct{ ID string }
				signed := r.Header.Get("Signature") != "" && (sig == "cavage" || r.Header.Get("Signature-Input") != "")
				if json.Unmarshal(b, &act) != nil || act.ID == "" || !signed {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				mu.Lock()
				ids[act.ID]++
				mu.Unlock()
				w.WriteHeader(http.StatusAccepted)
			}))
			defer srv.Close()
			c := config{target: srv.URL + "/inbox", pid: os.Getpid(), n: 40, conns: 4, actors: 3, sig: sig, keys: "127.0.0.1:0", timeout: 10 * time.Second}
			if err := run(c); err != nil {
				t.Fatal(err)
			}
			if len(ids) != 43 {
				t.Errorf("%d distinct activities arrived, want 40 plus 3 warm-up", len(ids))
			}
			for id, n := range ids {
				if n != 1 {
					t.Errorf("%s arrived %d times", id, n)
				}
			}
		})
	}
}

func TestRefusesNonLoopbackTarget(t *testing.T) {
	if err := run(config{target: "http://192.0.2.1/inbox", n: 1, conns: 1, actors: 1, keys: "127.0.0.1:0"}); err == nil {
		t.Fatal("run accepted a non-loopback target")
	}
}
