package github_test

import (
	"encoding/json"
	"testing"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/github"
)

// TestTagIdentitiesAgree: GitHub and Gitea announce a new tag twice (create and a tag
// push); both must map to the same identity so that the second posts nothing new.
func TestTagIdentitiesAgree(t *testing.T) {
	create := forgetest.Read(t, "github/create_tag.json")
	ev1 := forgetest.Parse(t, github.Adapter{}, "create", create)
	var push map[string]any
	if err := json.Unmarshal(forgetest.Read(t, "github/push_tag_deleted.json"), &push); err != nil {
		t.Fatal(err)
	}
	// The same tag pushed rather than deleted (the real payload deletes simple-tag).
	push["deleted"], push["created"] = false, true
	push["before"], push["after"] = "0000000000000000000000000000000000000000", "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	body, _ := json.Marshal(push)
	ev2 := forgetest.Parse(t, github.Adapter{}, "push", body)
	if ev1.Kind != forge.KindTag || ev2.Kind != forge.KindTag || ev1.Identity != ev2.Identity {
		t.Fatalf("create %q/%q and push %q/%q disagree", ev1.Kind, ev1.Identity, ev2.Kind, ev2.Identity)
	}
}
