package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLookup looks a remote actor up by URL and by handle over real HTTP on loopback,
// and refuses a document that is not served from its own id.
func TestLookup(t *testing.T) {
	t.Parallel()
	var base string
	mux := http.NewServeMux()
	actor := func() map[string]any {
		return map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "id": base + "/users/ada", "type": "Person",
			"preferredUsername": "ada", "name": "Ada", "inbox": base + "/users/ada/inbox"}
	}
	mux.HandleFunc("/users/ada", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/activity+json")
		_ = json.NewEncoder(w).Encode(actor())
	})
	mux.HandleFunc("/uploads/ada.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/activity+json")
		doc := actor()
		doc["id"] = base + "/users/ada" // claims the actor, served from elsewhere: refetched from its id
		doc["name"] = "Not Ada"
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("/.well-known/webfinger", func(w http.ResponseWriter, r *http.Request) {
		host := strings.TrimPrefix(base, "http://")
		if r.URL.Query().Get("resource") != "acct:ada@"+host {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jrd+json")
		fmt.Fprintf(w, `{"subject":"acct:ada@%s","links":[{"rel":"self","type":"application/activity+json","href":"%s/users/ada"}]}`, host, base)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base = srv.URL
	host := strings.TrimPrefix(base, "http://")
	opts := LookupOptions{AllowedCIDRs: []string{"127.0.0.0/8"}, AllowHTTP: true}
	tests := map[string]struct {
		target, want string
	}{
		"by URL":                     {base + "/users/ada", `"name": "Ada"`},
		"by acct: handle":            {"acct:ada@" + host, `"name": "Ada"`},
		"by @user@host":              {"@ada@" + host, `"name": "Ada"`},
		"a copy is read from its id": {base + "/uploads/ada.json", `"name": "Ada"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := opts
			o.Target = tc.target
			var out bytes.Buffer
			if err := Lookup(context.Background(), o, &out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.want) || !strings.Contains(out.String(), `"id": "`+base+`/users/ada"`) {
				t.Fatalf("output:\n%s", out.String())
			}
		})
	}
	o := opts
	o.Target = base + "/users/nobody"
	if err := Lookup(context.Background(), o, &bytes.Buffer{}); err == nil {
		t.Error("a missing document was looked up")
	}
	o = LookupOptions{Target: base + "/users/ada"} // no private ranges allowed: loopback refused
	if err := Lookup(context.Background(), o, &bytes.Buffer{}); err == nil {
		t.Error("loopback reached without allowedCIDRs")
	}
}
