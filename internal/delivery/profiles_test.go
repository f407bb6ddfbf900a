package delivery

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// bothKeys resolves the test actor's RSA and Ed25519 keys, as a peer that reads the
// actor's publicKey and its assertionMethod Multikey would.
type bothKeys struct{ t testing.TB }

func (b bothKeys) ResolveKey(_ context.Context, keyID string, _ bool) (*activitypub.RemoteKey, error) {
	u := urls.Actor{ID: testActorID}
	var k crypto.PublicKey
	switch keyID {
	case u.RSAKeyID():
		k = testPair(b.t).RSA.Public()
	case u.Ed25519KeyID():
		k = testPair(b.t).Ed25519.Public()
	default:
		return nil, fmt.Errorf("%w: %s", activitypub.ErrUnknownKey, keyID)
	}
	return &activitypub.RemoteKey{ID: keyID, Owner: testActorID, Key: k}, nil
}

// TestRunJobSignsWithStoredProfiles checks that a delivery Job signs each host with the
// profile the server stored (pinned or learnt), and that what the Job learns about a new
// host is stored through the server's queue endpoint.
func TestRunJobSignsWithStoredProfiles(t *testing.T) {
	v := activitypub.NewVerifier(bothKeys{t}, 100)
	var mu sync.Mutex
	seen := map[string]string{} // host -> scheme/key of the verified signature
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ver, err := v.VerifyRequest(r.Context(), r, body)
		if err != nil {
			http.Error(w, err.Error(), activitypub.StatusOf(err))
			return
		}
		mu.Lock()
		seen[strings.Split(r.Host, ":")[0]] = ver.Scheme + " " + ver.KeyID[strings.LastIndexByte(ver.KeyID, '#')+1:]
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	hosts := []string{"pinned.job.test", "learnt.job.test", "new.job.test"}
	f := &fediverse{resolve: map[string]string{}}
	var to []Recipient
	for _, h := range hosts {
		f.resolve[h] = strings.TrimPrefix(srv.URL, "http://")
		to = append(to, Recipient{Inbox: "http://" + h + ":" + port + "/inbox"})
	}
	s, _ := newStore(t)
	ctx := context.Background()
	for _, p := range []store.SignatureProfile{
		{Host: "pinned.job.test:" + port, Profile: string(activitypub.ProfileRFC9421Ed25519), Source: store.SourcePinned},
		{Host: "learnt.job.test:" + port, Profile: string(activitypub.ProfileRFC9421RSA), Source: activitypub.SourceKnock},
	} {
		if _, err := s.PutSignatureProfile(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	c := newClock()
	c.t = time.Now().UTC() // the peer's verifier checks the signature window against its own clock
	keysDir := filepath.Join(t.TempDir(), "keys")
	writeKeyDir(t, filepath.Join(keysDir, "releases"))
	a := newActivity("profiles", c.Now())
	if err := NewPublisher(s, nil).Publish(ctx, a, to); err != nil {
		t.Fatal(err)
	}
	res, err := RunJob(ctx, JobOptions{
		QueueURL: serveQueue(t, s, testToken), Token: testToken, KeysDir: keysDir,
		Actors: []JobActor{{ID: testActorID, Dir: "releases"}}, Client: f.clientConfig(), MaxDuration: time.Minute, Now: c.Now,
	})
	if err != nil || res.Delivered != 3 {
		t.Fatalf("RunJob = %+v, %v; want 3 delivered", res, err)
	}
	want := map[string]string{
		"pinned.job.test": "rfc9421 ed25519-key",
		"learnt.job.test": "rfc9421 main-key",
		"new.job.test":    "cavage main-key",
	}
	for h, w := range want {
		if seen[h] != w {
			t.Errorf("%s verified %q, want %q", h, seen[h], w)
		}
	}
	got, err := s.GetSignatureProfile(ctx, "new.job.test:"+port)
	if err != nil || got.Profile != string(activitypub.ProfileCavage) || got.Source != activitypub.SourceKnock {
		t.Errorf("what the Job learnt about a new host: %+v, %v; want cavage from its knock", got, err)
	}
	if got, _ := s.GetSignatureProfile(ctx, "pinned.job.test:"+port); got.Source != store.SourcePinned {
		t.Errorf("the pinned row changed: %+v", got)
	}
}
