package activitypub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestVerifierOrigin: with Verifier.Origin set, @target-uri, @authority and @scheme are
// checked against the configured public origin, not req.TLS: a request that arrives over
// plain http (behind a TLS-terminating proxy) verifies when it was signed over the public
// https URL, and is refused when signed over another origin.
func TestVerifierOrigin(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	const actor = "https://peer.example/users/alice"
	keys := staticKeys{&RemoteKey{ID: actor + "#ed25519-key", Owner: actor, Key: priv.Public()}}
	body := []byte(`{"type":"Create"}`)
	// received builds the request the proxied server sees for a POST signed over signedURL.
	received := func(t *testing.T, signedURL string) *http.Request {
		t.Helper()
		out, err := http.NewRequest(http.MethodPost, signedURL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := SignRFC9421(Message{Request: out}, body, priv, RFC9421Options{KeyID: actor + "#ed25519-key", Alg: AlgEd25519RFC,
			Components: []string{"@method", "@target-uri", "@authority", "@scheme", "content-digest"}}); err != nil {
			t.Fatal(err)
		}
		in := httptest.NewRequest(http.MethodPost, "/inbox?page=1", bytes.NewReader(body)) // no TLS
		in.Host = "forge.example"
		in.Header = out.Header.Clone()
		return in
	}
	public := func(context.Context) (*url.URL, error) { return url.Parse("https://forge.example") }

	cases := []struct {
		name      string
		signedURL string
		origin    func(context.Context) (*url.URL, error)
		wantKind  Kind // "" means verified
	}{
		{"https signature, origin configured", "https://forge.example/inbox?page=1", public, ""},
		{"https signature, origin written with capitals and the default port", "https://forge.example/inbox?page=1",
			func(context.Context) (*url.URL, error) { return url.Parse("https://FORGE.example:443") }, ""},
		{"https signature, no origin (from req.TLS)", "https://forge.example/inbox?page=1", nil, KindBadSignature},
		{"http signature, origin https", "http://forge.example/inbox?page=1", public, KindBadSignature},
		{"other host, origin configured", "https://other.example/inbox?page=1", public, KindBadSignature},
		{"other path, origin configured", "https://forge.example/other?page=1", public, KindBadSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := &Verifier{Keys: keys, Origin: c.origin}
			_, err := v.VerifyRequest(context.Background(), received(t, c.signedURL), body)
			switch {
			case c.wantKind == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantKind != "" && !isKind(err, c.wantKind):
				t.Fatalf("got %v, want %s", err, c.wantKind)
			}
		})
	}

	t.Run("the origin cannot be read", func(t *testing.T) {
		broken := errors.New("FederationServer not found")
		v := &Verifier{Keys: keys, Origin: func(context.Context) (*url.URL, error) { return nil, broken }}
		_, err := v.VerifyRequest(context.Background(), received(t, "https://forge.example/inbox?page=1"), body)
		if !errors.Is(err, broken) || StatusOf(err) == http.StatusUnauthorized {
			t.Fatalf("got %v (status %d), want the wrapped cause and no 401: our fault, not the peer's", err, StatusOf(err))
		}
	})
}
