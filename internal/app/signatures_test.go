package app

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// TestSignatureProfilesBetweenInstances checks, with two real instances, that each
// learns that the other is a fedforge (NodeInfo, or its RFC 9421 Ed25519 signatures)
// and signs with RFC 9421 ed25519, that the other verifies it (the Follow is accepted
// and no fallback to cavage is recorded), that a pin in the FederationServer spec is
// written to the store and removed with the pin, and that `fedforge signatures` lists
// the profiles.
func TestSignatureProfilesBetweenInstances(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := context.Background()
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.beta, "watcher", "watcher", false)
	p.follow(t, p.beta, "watch-releases", "watcher", "acct:releases@"+alphaHost)
	p.phase(t, "beta", "watch-releases", fedv1.PhaseAccepted)

	alphaStore, err := store.Open(ctx, p.alpha.dsn)
	must(t, err)
	defer alphaStore.Close()
	betaStore, err := store.Open(ctx, p.beta.dsn)
	must(t, err)
	defer betaStore.Close()
	ed := string(activitypub.ProfileRFC9421Ed25519)
	// The Follow (beta to alpha) and the Accept (alpha to beta) went with Ed25519 RFC 9421
	// signatures and were taken: a refused first knock would have left cavage/knock.
	for _, c := range []struct {
		st   store.Store
		peer string
	}{{betaStore, alphaHost}, {alphaStore, betaHost}} {
		got, err := c.st.GetSignatureProfile(ctx, c.peer)
		if err != nil || got.Profile != ed || (got.Source != activitypub.SourceNodeInfo && got.Source != activitypub.SourceInbound) {
			t.Errorf("profile of %s: %+v, %v; want %s from nodeinfo or inbound", c.peer, got, err, ed)
		}
		if got.Source == activitypub.SourceNodeInfo && !strings.HasPrefix(got.Software, "fedforge/") {
			t.Errorf("profile of %s from NodeInfo names software %q", c.peer, got.Software)
		}
	}

	setPins := func(pins ...fedv1.SignaturePin) {
		var fs fedv1.FederationServer
		must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "forge"}, &fs))
		base := fs.DeepCopy()
		fs.Spec.Signatures = &fedv1.SignatureSpec{Pins: pins}
		// A merge patch: an Update races with status writes (resourceVersion conflicts).
		must(t, p.k8s.Patch(ctx, &fs, client.MergeFrom(base)))
	}
	setPins(fedv1.SignaturePin{Host: betaHost, Profile: "cavage"})
	eventually(t, 30*time.Second, func() error {
		got, err := alphaStore.GetSignatureProfile(ctx, betaHost)
		if err != nil || got.Profile != "cavage" || got.Source != store.SourcePinned {
			return fmt.Errorf("pinned row: %+v, %v", got, err)
		}
		return nil
	})
	var out bytes.Buffer
	must(t, ListSignatures(ctx, p.alpha.dsn, &out))
	if !strings.Contains(out.String(), "HOST") || !regexpLine(out.String(), betaHost, "cavage", "pinned") {
		t.Errorf("fedforge signatures:\n%s", out.String())
	}
	// A Follow from alpha to beta goes out under the pin (cavage) and is accepted.
	p.follow(t, p.alpha, "releases-watches-back", "releases", p.beta.base()+"/actors/watcher")
	p.phase(t, "alpha", "releases-watches-back", fedv1.PhaseAccepted)

	setPins()
	eventually(t, 30*time.Second, func() error {
		got, err := alphaStore.GetSignatureProfile(ctx, betaHost)
		if err == nil && got.Source == store.SourcePinned {
			return fmt.Errorf("pin still stored: %+v", got)
		}
		return nil
	})
}

// regexpLine reports whether some line of out holds all the words, in order.
func regexpLine(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		i := 0
		for _, w := range f {
			if i < len(words) && w == words[i] {
				i++
			}
		}
		if i == len(words) {
			return true
		}
	}
	return false
}
