// Package rendertest holds what tests of rendering and publishing code share: the
// fixed actor and clock, golden files of rendered activities, a check that reads a
// Create the way Mastodon does, and a publisher into a real store. It is imported only
// by tests.
package rendertest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// ActorID is the actor the tests publish as.
const ActorID = "https://fed.example/actors/releases-demo"

// Now is the fixed clock of the tests.
var Now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// goldenActivities is what a golden file holds: the documents exactly as they will be
// served (the activity, and the object at its own id when there is one).
type goldenActivities struct {
	Activities []json.RawMessage `json:"activities"`
	Objects    []json.RawMessage `json:"objects,omitempty"`
}

// Golden returns what a golden file holds for acts.
func Golden(t *testing.T, acts []store.Activity) []byte {
	t.Helper()
	var g goldenActivities
	for _, a := range acts {
		g.Activities = append(g.Activities, a.Raw)
		if a.Object != nil {
			g.Objects = append(g.Objects, a.Object.Raw)
		}
	}
	var buf bytes.Buffer
	raw, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// CheckGolden compares got (indented JSON) with testdata/golden/name of the package
// under test, or rewrites it with -update.
func CheckGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update)", err)
	}
	if string(want) != string(got) {
		t.Fatalf("%s differs from golden (run go test with -update and review the diff):\n%s", name, got)
	}
}
