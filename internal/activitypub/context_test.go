package activitypub

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// contextTerms returns the terms the inline objects of a @context define, and the IRIs
// of the contexts it names.
func contextTerms(t *testing.T, raw json.RawMessage) (map[string]json.RawMessage, []string) {
	t.Helper()
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		t.Fatalf("@context is not a JSON array: %v", err)
	}
	terms := map[string]json.RawMessage{}
	var iris []string
	for _, p := range parts {
		var iri string
		if json.Unmarshal(p, &iri) == nil {
			iris = append(iris, iri)
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(p, &obj); err != nil {
			t.Fatalf("@context entry %s is neither an IRI nor an object", p)
		}
		for k, v := range obj {
			if _, dup := terms[k]; dup {
				t.Errorf("term %q is defined twice", k)
			}
			terms[k] = v
		}
	}
	return terms, iris
}

// TestContextsAreSelfContained: what we write names only contexts every JSON-LD
// processor of the Fediverse preloads, and defines each ForgeFed property we write
// inline, so that a peer expands our documents without fetching anything.
func TestContextsAreSelfContained(t *testing.T) {
	preloaded := map[string]bool{ActivityStreamsContext: true, SecurityContext: true, DataIntegrityContext: true}
	var forgeFedProps []string
	ft := reflect.TypeFor[ForgeFed]()
	for i := range ft.NumField() {
		name, _, _ := strings.Cut(ft.Field(i).Tag.Get("json"), ",")
		forgeFedProps = append(forgeFedProps, name)
	}
	forgeFedTypes := []string{TypeRepository, TypePush, TypeCommit, TypeBranch, TypeTicket, TypePatch,
		TypeTicketTracker, TypePatchTracker, TypeProject, TypeTeam, TypeResolve, TypeGrant, TypeRevoke}
	for name, ctx := range map[string]json.RawMessage{"actor": ActorContext(), "activity": ActivityContext()} {
		terms, iris := contextTerms(t, ctx)
		for _, iri := range iris {
			if !preloaded[iri] {
				t.Errorf("%s context names %s, which a peer would have to fetch", name, iri)
			}
		}
		if string(terms["forge"]) != `"https://forgefed.org/ns#"` {
			t.Errorf("%s context: forge prefix %s", name, terms["forge"])
		}
		for _, p := range append(forgeFedProps, forgeFedTypes...) {
			def, ok := terms[p]
			if !ok {
				t.Errorf("%s context does not define the ForgeFed term %q", name, p)
				continue
			}
			if !strings.Contains(string(def), `"forge:`+p+`"`) {
				t.Errorf("%s context defines %q as %s, want forge:%s", name, p, def, p)
			}
		}
	}
}
