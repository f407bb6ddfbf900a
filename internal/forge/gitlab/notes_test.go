package gitlab_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/gitlab"
)

func patched(t *testing.T, file string, patch func(m, attrs map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(forgetest.Read(t, file), &m); err != nil {
		t.Fatal(err)
	}
	patch(m, m["object_attributes"].(map[string]any))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t *testing.T, event string, body []byte) (*forge.Event, error) {
	t.Helper()
	return gitlab.Adapter{}.ParseWebhook(forgetest.SignedHeaders("GitLab", event, body, forgetest.Secret), body, forgetest.Secret)
}

// TestReadNotesAndCloses parses GitLab's documented Note Hook payloads (comments on an
// issue and on a merge request, see the testdata README) and the documented Issue and
// Merge Request hooks with the close and reopen actions GitLab lists for them.
func TestReadNotesAndCloses(t *testing.T) {
	tests := []struct {
		name, event string
		body        []byte
		want        forge.Event
	}{
		{"comment on an issue", "Note Hook", forgetest.Read(t, "gitlab/note_issue.json"), forge.Event{
			Kind: forge.KindComment, Action: forge.ActionCreated, Number: 17, CommentID: 1241, Title: "test", Body: "Hello world",
			URL: "http://example.com/gitlab-org/gitlab-test/issues/17#note_1241", Time: time.Date(2015, 5, 17, 17, 6, 40, 0, time.UTC),
			Actor:    forge.Person{Name: "Administrator", Username: "root", URL: "http://example.com/root"},
			Identity: "comment|gitlab-org/gitlab-test|issue|17|1241|created"}},
		{"comment on a merge request", "Note Hook", forgetest.Read(t, "gitlab/note_merge_request.json"), forge.Event{
			Kind: forge.KindComment, Action: forge.ActionCreated, Number: 1, CommentID: 1244, OnMergeRequest: true,
			Title: "Tempora et eos debitis quae laborum et.", Identity: "comment|gitlab-org/gitlab-test|mr|1|1244|created"}},
		{"comment edited", "Note Hook", patched(t, "gitlab/note_issue.json", func(_, a map[string]any) {
			a["action"], a["note"], a["updated_at"] = "update", "Hello, world", "2015-05-17 17:10:00 UTC"
		}), forge.Event{Kind: forge.KindComment, Action: forge.ActionEdited, Number: 17, CommentID: 1241, Body: "Hello, world",
			Time: time.Date(2015, 5, 17, 17, 10, 0, 0, time.UTC)}},
		{"issue closed", "Issue Hook", patched(t, "gitlab/issue.json", func(_, a map[string]any) {
			a["action"], a["state"], a["updated_at"] = "close", "closed", "2013-12-04T09:00:00Z"
		}), forge.Event{Kind: forge.KindIssue, Action: forge.ActionClosed, Number: 23, Identity: "issue|gitlabhq/gitlab-test|23|closed|2013-12-04T09:00:00Z"}},
		{"issue reopened", "Issue Hook", patched(t, "gitlab/issue.json", func(_, a map[string]any) {
			a["action"], a["updated_at"] = "reopen", "2013-12-05T09:00:00Z"
		}), forge.Event{Kind: forge.KindIssue, Action: forge.ActionReopened, Number: 23, Identity: "issue|gitlabhq/gitlab-test|23|reopened|2013-12-05T09:00:00Z"}},
		{"merge request closed", "Merge Request Hook", patched(t, "gitlab/merge_request.json", func(_, a map[string]any) {
			a["action"], a["updated_at"] = "close", "2013-12-04T09:00:00Z"
		}), forge.Event{Kind: forge.KindMergeRequest, Action: forge.ActionClosed, Number: 1, Identity: "mr|gitlabhq/gitlab-test|1|closed|2013-12-04T09:00:00Z"}},
		{"merge request reopened", "Merge Request Hook", patched(t, "gitlab/merge_request.json", func(_, a map[string]any) {
			a["action"], a["updated_at"] = "reopen", "2013-12-05T09:00:00Z"
		}), forge.Event{Kind: forge.KindMergeRequest, Action: forge.ActionReopened, Number: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := parse(t, tc.event, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			if ev.Kind != w.Kind || ev.Action != w.Action || ev.Number != w.Number || ev.OnMergeRequest != w.OnMergeRequest {
				t.Errorf("got %s %s #%d mr=%t, want %s %s #%d mr=%t", ev.Kind, ev.Action, ev.Number, ev.OnMergeRequest, w.Kind, w.Action, w.Number, w.OnMergeRequest)
			}
			if w.CommentID != 0 && ev.CommentID != w.CommentID {
				t.Errorf("CommentID %d, want %d", ev.CommentID, w.CommentID)
			}
			for _, f := range []struct{ name, got, want string }{
				{"Title", ev.Title, w.Title}, {"Body", ev.Body, w.Body}, {"URL", ev.URL, w.URL}, {"Identity", ev.Identity, w.Identity},
				{"Actor", ev.Actor.Username, w.Actor.Username}, {"Actor.URL", ev.Actor.URL, w.Actor.URL},
			} {
				if f.want != "" && f.got != f.want {
					t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
				}
			}
			if !w.Time.IsZero() && !ev.Time.Equal(w.Time) {
				t.Errorf("Time = %v, want %v", ev.Time, w.Time)
			}
		})
	}
}

// TestReadNotesIgnored: notes that are not part of an issue or merge request discussion
// Fedforge publishes, and notes Fedforge wrote, are 202 and never rendered.
func TestReadNotesIgnored(t *testing.T) {
	tests := map[string][]byte{
		"system note":  patched(t, "gitlab/note_issue.json", func(_, a map[string]any) { a["system"] = true }),
		"confidential": patched(t, "gitlab/note_issue.json", func(m, _ map[string]any) { m["event_type"] = "confidential_note" }),
		"on a snippet": patched(t, "gitlab/note_issue.json", func(m, a map[string]any) { a["noteable_type"] = "Snippet"; delete(m, "issue") }),
		"by Fedforge": patched(t, "gitlab/note_issue.json", func(_, a map[string]any) {
			a["note"] = "From elsewhere.\n\n<!-- fedforge:idempotency-key=https://b.example/a/1 -->"
		}),
		"confidential issue closed": patched(t, "gitlab/issue.json", func(_, a map[string]any) { a["action"], a["confidential"] = "close", true }),
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			event := "Note Hook"
			if name == "confidential issue closed" {
				event = "Issue Hook"
			}
			if ev, err := parse(t, event, body); !errors.Is(err, forge.ErrIgnoredEvent) {
				t.Fatalf("got %+v, %v; want ErrIgnoredEvent", ev, err)
			}
		})
	}
}
