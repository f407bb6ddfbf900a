package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// TestRepositoryForgeFedSurface: a Repository actor that fronts a forge project shows the
// cloneUri and forkedFrom the operator read from the forge (status.forge), once they are
// there; an actor of another type, or without spec.forge, never does. Every Repository
// has forks and likes collections; one that fronts a forge tracks its own tickets.
func TestRepositoryForgeFedSurface(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	forgeSpec := &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: "https://git.example.org", Project: "alice/tool",
		TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}}
	st := &fedv1.ForgeStatus{CloneURI: "https://git.example.org/alice/tool.git", ForkedFrom: "https://git.example.org/bob/tool"}
	for name, spec := range map[string]fedv1.FederatedActorSpec{
		"tool":      {Type: fedv1.ActorRepository, PreferredUsername: "tool", Forge: forgeSpec},
		"service":   {Type: fedv1.ActorService, PreferredUsername: "service", Forge: forgeSpec},
		"unfronted": {Type: fedv1.ActorRepository, PreferredUsername: "unfronted"},
	} {
		f.actor(ctx, t, name, "main", spec, "repo-keys")
	}
	doc := func(username string) map[string]any {
		t.Helper()
		var m map[string]any
		eventually(t, func() error {
			resp, body := f.get(t, "/actors/"+username, activitypub.AcceptActivity)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %d %s", username, resp.StatusCode, body)
			}
			return json.Unmarshal(body, &m)
		})
		return m
	}

	// Before the operator has read the forge: no cloneUri or forkedFrom, but the
	// collections and ticketsTrackedBy, which do not depend on what the forge says.
	m := doc("tool")
	if m["cloneUri"] != nil || m["forkedFrom"] != nil {
		t.Errorf("cloneUri/forkedFrom before status.forge: %v %v", m["cloneUri"], m["forkedFrom"])
	}
	toolID := fmt.Sprint(m["id"])
	if m["forks"] != toolID+"/forks" || m["likes"] != toolID+"/likes" || m["ticketsTrackedBy"] != toolID {
		t.Errorf("fronted Repository: forks %v likes %v ticketsTrackedBy %v, want its collections and itself", m["forks"], m["likes"], m["ticketsTrackedBy"])
	}
	if m := doc("unfronted"); m["forks"] == nil || m["likes"] == nil || m["ticketsTrackedBy"] != nil {
		t.Errorf("Repository without spec.forge: forks %v likes %v ticketsTrackedBy %v, want the collections and no tracker", m["forks"], m["likes"], m["ticketsTrackedBy"])
	}
	if m := doc("service"); m["forks"] != nil || m["likes"] != nil || m["ticketsTrackedBy"] != nil {
		t.Errorf("a Service has no repository surface: %v %v %v", m["forks"], m["likes"], m["ticketsTrackedBy"])
	}
	for _, name := range []string{"tool", "service", "unfronted"} {
		var a fedv1.FederatedActor
		must(t, f.k8s.Get(ctx, types.NamespacedName{Namespace: testNS, Name: name}, &a))
		base := a.DeepCopy()
		a.Status.Forge = st.DeepCopy()
		must(t, f.k8s.Status().Patch(ctx, &a, client.MergeFrom(base)))
	}
	eventually(t, func() error {
		m := doc("tool")
		// cloneUri is written as a list (ForgeFed allows several); forkedFrom as one IRI.
		if fmt.Sprint(m["cloneUri"]) != "["+st.CloneURI+"]" || m["forkedFrom"] != st.ForkedFrom {
			return fmt.Errorf("cloneUri %v forkedFrom %v, want %s and %s", m["cloneUri"], m["forkedFrom"], st.CloneURI, st.ForkedFrom)
		}
		return nil
	})
	for _, name := range []string{"service", "unfronted"} {
		if m := doc(name); m["cloneUri"] != nil || m["forkedFrom"] != nil {
			t.Errorf("%s: cloneUri/forkedFrom on an actor that is not a fronted Repository: %v %v", name, m["cloneUri"], m["forkedFrom"])
		}
	}
}
