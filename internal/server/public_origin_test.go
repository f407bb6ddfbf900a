package server

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// TestInboxBehindTLSProxy: the FederationServer's public URL is https, the process is
// reached over plain http (as behind the TLS-terminating Ingress the operator creates), and
// a peer signs the https URL it addressed, as Fedify 2 does (RFC 9421: @method,
// @target-uri, @authority, content-digest). The signature is checked against the
// configured public URL: accepted; a signature over another host, or over the http URL the
// proxy forwards, is refused whatever X-Forwarded-* says.
func TestInboxBehindTLSProxy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const actor = "https://peer.example/users/alice"
	peer := f.knownPeer(ctx, t, actor)

	// The platform team publishes the server over https; the Ingress terminates TLS.
	var fs fedv1.FederationServer
	must(t, f.k8s.Get(ctx, types.NamespacedName{Namespace: testNS, Name: "main"}, &fs))
	patch := client.MergeFrom(fs.DeepCopy()) // a patch: the server writes status meanwhile
	fs.Spec.Scheme = fedv1.SchemeHTTPS
	must(t, f.k8s.Patch(ctx, &fs, patch))
	for i := 0; ; i++ { // wait for the server's informer to see the new scheme
		if u, err := f.srv.fed.actors.publicOrigin(ctx); err == nil && u.Scheme == "https" {
			break
		}
		if i == 500 {
			t.Fatal("the server's cache never saw scheme https")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wire, err := url.Parse(f.http.URL + "/inbox")
	must(t, err)

	n := 0
	// post signs the inbox POST over signedURL, then sends it to the plain-http listener
	// with Host: testHost and the given extra headers, as the Ingress forwards it.
	post := func(t *testing.T, signedURL string, alg string, extra http.Header) int {
		t.Helper()
		n++
		body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"https://peer.example/proxied/%d/activity","type":"Create","actor":"%s",`+
			`"to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://peer.example/proxied/%d","type":"Note","content":"hello"}}`, n, actor, n))
		r, err := http.NewRequest(http.MethodPost, signedURL, bytes.NewReader(body))
		must(t, err)
		r.Header.Set("Content-Type", "application/activity+json")
		key, keyID := crypto.Signer(peer.RSA), actor+"#main-key"
		if alg == activitypub.AlgEd25519RFC {
			key, keyID = peer.Ed25519, actor+"#ed25519-key"
		}
		must(t, activitypub.SignRFC9421(activitypub.Message{Request: r}, body, key, activitypub.RFC9421Options{KeyID: keyID, Alg: alg,
			IncludeAlg: true, Components: []string{"@method", "@target-uri", "@authority", "content-digest"}}))
		r.URL = wire
		r.Host = testHost
		for k, v := range extra {
			r.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(r)
		must(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	forwarded := http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {testHost}}

	for _, alg := range []string{activitypub.AlgRSAv15SHA256, activitypub.AlgEd25519RFC} {
		t.Run("signed over the public https URL/"+alg, func(t *testing.T) {
			if got := post(t, "https://"+testHost+"/inbox", alg, forwarded); got != http.StatusAccepted {
				t.Fatalf("got %d, want 202", got)
			}
		})
	}
	t.Run("signed over another host", func(t *testing.T) {
		spoof := http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"other.example"}}
		if got := post(t, "https://other.example/inbox", activitypub.AlgEd25519RFC, spoof); got != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", got)
		}
	})
	t.Run("signed over the http URL the proxy forwards", func(t *testing.T) {
		if got := post(t, "http://"+testHost+"/inbox", activitypub.AlgEd25519RFC, nil); got != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", got)
		}
	})
}
