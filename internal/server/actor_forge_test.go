package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/piprate/json-gold/ld"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// TestRepositoryForgeFedSurface: a Repository actor that fronts a forge project shows the
// cloneUri and forkedFrom the operator read from the forge (status.forge), once they are
// there; an actor of another type, or without spec.forge, never does. Every Repository
// has forks and likes collections; one that fronts a forge tracks its own tickets. The
// served document passes JSON-LD expansion with only the contexts it names preloaded, its
// ForgeFed properties under ForgeFed's IRIs.
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
	expandsToForgeFed(t, doc("tool"), map[string]string{
		"https://forgefed.org/ns#cloneUri": st.CloneURI, "https://forgefed.org/ns#forkedFrom": st.ForkedFrom,
		"https://forgefed.org/ns#forks": toolID + "/forks", "https://forgefed.org/ns#ticketsTrackedBy": toolID,
		"https://www.w3.org/ns/activitystreams#likes": toolID + "/likes",
	})
	for _, name := range []string{"service", "unfronted"} {
		if m := doc(name); m["cloneUri"] != nil || m["forkedFrom"] != nil {
			t.Errorf("%s: cloneUri/forkedFrom on an actor that is not a fronted Repository: %v %v", name, m["cloneUri"], m["forkedFrom"])
		}
	}
}

// contextFiles are the context documents a served actor names, as JSON-LD processors of
// the Fediverse preload them (copies in internal/activitypub/testdata/contexts).
var contextFiles = map[string]string{
	activitypub.ActivityStreamsContext: "activitystreams.jsonld",
	activitypub.SecurityContext:        "security-v1.jsonld",
	activitypub.DataIntegrityContext:   "data-integrity-v1.jsonld",
}

// offlineContexts serves contextFiles and refuses every other IRI, so the expansion
// fails if the served document needs a context a peer would have to fetch.
type offlineContexts struct{}

func (offlineContexts) LoadDocument(u string) (*ld.RemoteDocument, error) {
	name, ok := contextFiles[u]
	if !ok {
		return nil, fmt.Errorf("context %s is not preloaded", u)
	}
	b, err := os.ReadFile(filepath.Join("..", "activitypub", "testdata", "contexts", name))
	if err != nil {
		return nil, err
	}
	doc, err := ld.DocumentFromReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return &ld.RemoteDocument{DocumentURL: u, Document: doc}, nil
}

// expandsToForgeFed runs JSON-LD expansion of a served actor document and checks that
// each property IRI holds exactly the one IRI node wanted.
func expandsToForgeFed(t *testing.T, doc map[string]any, want map[string]string) {
	t.Helper()
	opts := ld.NewJsonLdOptions("")
	opts.ProcessingMode = ld.JsonLd_1_1
	opts.DocumentLoader = offlineContexts{}
	out, err := ld.NewJsonLdProcessor().Expand(doc, opts)
	if err != nil {
		t.Fatalf("expanding the served document: %v", err)
	}
	if len(out) != 1 {
		t.Fatalf("the served document expanded to %d nodes, want 1", len(out))
	}
	node := out[0].(map[string]any)
	for iri, v := range want {
		if got, exp := node[iri], []any{map[string]any{"@id": v}}; !reflect.DeepEqual(got, exp) {
			t.Errorf("expanded %s = %v, want %v", iri, got, exp)
		}
	}
}
