package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// walkCollection follows a collection over HTTP as a peer would: the collection, its
// first page, then every next link to the end. It returns totalItems and the item ids.
func walkCollection(t *testing.T, in instance, path string) (int, []string) {
	t.Helper()
	c := getAS2(t, in, path)
	total, ok := c["totalItems"].(float64)
	if !ok {
		t.Fatalf("%s has no totalItems: %v", path, c)
	}
	next, _ := c["first"].(string)
	var ids []string
	for pages := 0; next != ""; pages++ {
		if pages > 100 {
			t.Fatalf("%s: more than 100 pages", path)
		}
		if !strings.HasPrefix(next, in.base()) {
			t.Fatalf("%s: link %q is not on %s", path, next, in.base())
		}
		page := getAS2(t, in, strings.TrimPrefix(next, in.base()))
		items, _ := page["orderedItems"].([]any)
		for _, it := range items {
			switch v := it.(type) {
			case string:
				ids = append(ids, v)
			case map[string]any:
				id, _ := v["id"].(string)
				ids = append(ids, id)
			}
		}
		next, _ = page["next"].(string)
	}
	return int(total), ids
}

// TestCollectionsPagedToTheEnd walks an outbox and a followers collection longer than a
// page over HTTP, following next links to the end: every item comes once and their
// number is totalItems.
func TestCollectionsPagedToTheEnd(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := context.Background()
	p.actor(t, p.alpha, "releases", "releases", false)
	alphaID := p.alpha.base() + "/actors/releases"
	st, err := store.Open(ctx, p.alpha.dsn)
	must(t, err)
	defer st.Close()
	const n = 47 // two full pages of 20 and a short one
	start := time.Now().UTC().Add(-time.Hour)
	for i := range n {
		id := fmt.Sprintf("%s/activities/page-%d", alphaID, i)
		raw := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Create","actor":%q,"to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"%s/o","type":"Note","content":"n"}}`, id, alphaID, id)
		vis := store.Public
		if i%10 == 3 {
			vis = store.Followers // not listed to an anonymous reader, nor counted
		}
		_, err := st.AppendActivity(ctx, store.Activity{ID: id, ActorID: alphaID, Type: "Create", Visibility: vis, Published: start.Add(time.Duration(i) * time.Second), Raw: json.RawMessage(raw)}, nil)
		must(t, err)
	}
	for i := range n {
		remote := fmt.Sprintf("%s/actors/fan%02d", p.beta.base(), i)
		s := &fedv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: fmt.Sprintf("fan-%d", i)},
			Spec: fedv1.SubscriptionSpec{Direction: fedv1.DirectionInbound, ActorRef: fedv1.LocalObjectReference{Name: "releases"}, RemoteActor: remote}}
		must(t, p.k8s.Create(ctx, s))
		base := s.DeepCopy()
		s.Status = fedv1.SubscriptionStatus{Phase: fedv1.PhaseAccepted, RemoteActorID: remote, RemoteHost: betaHost,
			RemoteInbox: remote + "/inbox", RemoteSharedInbox: p.beta.base() + "/inbox", FollowActivityID: remote + "/follow"}
		must(t, p.k8s.Status().Patch(ctx, s, client.MergeFrom(base)))
	}
	eventually(t, 30*time.Second, func() error {
		if c := getAS2(t, p.alpha, "/actors/releases/followers"); c["totalItems"] != float64(n) {
			return fmt.Errorf("followers totalItems %v", c["totalItems"])
		}
		return nil
	})
	for _, path := range []string{"/actors/releases/outbox", "/actors/releases/followers"} {
		t.Run(path, func(t *testing.T) {
			total, ids := walkCollection(t, p.alpha, path)
			seen := map[string]bool{}
			for _, id := range ids {
				if id == "" || seen[id] {
					t.Errorf("item %q empty or repeated", id)
				}
				seen[id] = true
			}
			if len(ids) != total || total < 40 {
				t.Errorf("%s: walked %d items, totalItems %d", path, len(ids), total)
			}
		})
	}
}
