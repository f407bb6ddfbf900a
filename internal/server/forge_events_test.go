package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
)

// TestForgeForksAndStarsAreRecorded: the webhook hook (recordForgeEvent) lists a fork made
// in the forge in the upstream Repository's forks collection (by the fork's actor when a
// local Repository fronts it, else by its forge page) and counts stars once per user in
// likes, taking one back when the forge says it was removed; other actors are left alone.
func TestForgeForksAndStarsAreRecorded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for name, typ := range map[string]fedv1.ActorType{"upstream": fedv1.ActorRepository, "mirror": fedv1.ActorRepository, "news": fedv1.ActorService} {
		f.actor(ctx, t, name, "main", fedv1.FederatedActorSpec{Type: typ, PreferredUsername: name}, "repo-keys")
	}
	const mirrorPage = "https://git.example.org/carol/tool"
	var mirror fedv1.FederatedActor
	must(t, f.k8s.Get(ctx, types.NamespacedName{Namespace: testNS, Name: "mirror"}, &mirror))
	base := mirror.DeepCopy()
	mirror.Status.Forge = &fedv1.ForgeStatus{WebURL: mirrorPage}
	must(t, f.k8s.Status().Patch(ctx, &mirror, client.MergeFrom(base)))

	fed := f.srv.fed
	upstreamID, mirrorID := "", ""
	record := func(name string, ev forge.Event) {
		t.Helper()
		var a *localActor
		eventually(t, func() error {
			var err error
			a, err = fed.actors.byName(ctx, name)
			if err == nil && name == "mirror" && a.obj.Status.Forge == nil {
				return fmt.Errorf("status.forge of mirror not in the cache yet")
			}
			return err
		})
		if name == "upstream" {
			upstreamID = a.urls.ID
		}
		must(t, fed.recordForgeEvent(ctx, a.obj, &ev))
	}
	record("mirror", forge.Event{Kind: forge.KindStar}) // makes sure mirror's status is cached
	m, _ := fed.actors.byName(ctx, "mirror")
	mirrorID = m.urls.ID
	repo := forge.Repository{FullName: "bob/tool", WebURL: "https://git.example.org/bob/tool"}
	record("upstream", forge.Event{Kind: forge.KindFork, Repository: repo, Fork: forge.Repository{WebURL: "https://git.example.org/dave/tool"}})
	record("upstream", forge.Event{Kind: forge.KindFork, Repository: repo, Fork: forge.Repository{WebURL: mirrorPage + "/"}})
	record("upstream", forge.Event{Kind: forge.KindFork, Repository: repo, Fork: forge.Repository{WebURL: "https://git.example.org/dave/tool"}}) // a retry
	record("upstream", forge.Event{Kind: forge.KindStar, Action: forge.ActionCreated, Repository: repo, Actor: forge.Person{Username: "erin", URL: "https://git.example.org/erin"}})
	record("upstream", forge.Event{Kind: forge.KindStar, Action: forge.ActionCreated, Repository: repo, Actor: forge.Person{Username: "erin", URL: "https://git.example.org/erin"}})
	record("upstream", forge.Event{Kind: forge.KindStar, Action: forge.ActionCreated, Repository: repo, Actor: forge.Person{Username: "frank"}})
	record("upstream", forge.Event{Kind: forge.KindStar, Action: forge.ActionDeleted, Repository: repo, Actor: forge.Person{Username: "erin", URL: "https://git.example.org/erin"}})
	record("news", forge.Event{Kind: forge.KindStar, Repository: repo, Actor: forge.Person{Username: "gina"}})

	items := func(path string) (int, []json.RawMessage) {
		t.Helper()
		var c, page struct {
			TotalItems   int               `json:"totalItems"`
			OrderedItems []json.RawMessage `json:"orderedItems"`
		}
		for _, q := range []string{"", "?page=true"} {
			resp, body := f.get(t, path+q, activitypub.AcceptActivity)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s%s: %d %s", path, q, resp.StatusCode, body)
			}
			dst := &c
			if q != "" {
				dst = &page
			}
			must(t, json.Unmarshal(body, dst))
		}
		return c.TotalItems, page.OrderedItems
	}
	n, forks := items("/actors/upstream/forks")
	var got []string
	for _, raw := range forks {
		var s string
		must(t, json.Unmarshal(raw, &s))
		got = append(got, s)
	}
	if want := []string{mirrorID, "https://git.example.org/dave/tool"}; n != 2 || !slices.Equal(got, want) {
		t.Errorf("forks: %d %v, want %v (newest first, the fronted fork by its actor)", n, got, want)
	}
	n, likes := items("/actors/upstream/likes")
	if n != 1 || len(likes) != 1 {
		t.Fatalf("likes: %d %s, want frank's star alone", n, likes)
	}
	var like map[string]any
	must(t, json.Unmarshal(likes[0], &like))
	if like["type"] != "Like" || like["actor"] != "https://git.example.org/frank" || like["object"] != upstreamID || like["id"] != nil {
		t.Errorf("forge star listed as %v, want an anonymous Like by frank's page of upstream", like)
	}
	if resp, _ := f.get(t, "/actors/news/likes", activitypub.AcceptActivity); resp.StatusCode != http.StatusNotFound {
		t.Errorf("likes of a Service: %d, want 404", resp.StatusCode)
	}
}
