package github_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/github"
)

// patched returns a testdata payload with fields changed by patch.
func patched(t *testing.T, file string, patch func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(forgetest.Read(t, file), &m); err != nil {
		t.Fatal(err)
	}
	patch(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadThreadEvents parses GitHub's documented payloads (octokit/webhooks, see the
// testdata README) of the phase 2 events and pins what rendering uses, identities
// included.
func TestReadThreadEvents(t *testing.T) {
	const repo = "Codertocat/Hello-World"
	tests := []struct {
		name, event string
		body        []byte
		want        forge.Event
	}{
		{"comment created", "issue_comment", forgetest.Read(t, "github/issue_comment_created.json"), forge.Event{
			Kind: forge.KindComment, Action: forge.ActionCreated, Number: 1, CommentID: 492700400, Title: "Spelling error in the README file",
			Body: "You are totally right! I'll get this fixed right away.", URL: "https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400",
			Actor: forge.Person{Username: "Codertocat", URL: "https://github.com/Codertocat"}, Time: time.Date(2019, 5, 15, 15, 20, 21, 0, time.UTC),
			Identity: "comment|Codertocat/Hello-World|issue|1|492700400|created"}},
		{"comment edited", "issue_comment", forgetest.Read(t, "github/issue_comment_edited.json"), forge.Event{
			Kind: forge.KindComment, Action: forge.ActionEdited, Number: 1, CommentID: 492700400, Time: time.Date(2019, 5, 15, 15, 20, 22, 0, time.UTC)}},
		{"comment deleted", "issue_comment", forgetest.Read(t, "github/issue_comment_deleted.json"), forge.Event{
			Kind: forge.KindComment, Action: forge.ActionDeleted, Number: 1, CommentID: 492700400,
			Identity: "comment|Codertocat/Hello-World|issue|1|492700400|deleted"}},
		{"comment on a pull request", "issue_comment", patched(t, "github/issue_comment_created.json", func(m map[string]any) {
			m["issue"].(map[string]any)["pull_request"] = map[string]any{"html_url": "https://github.com/Codertocat/Hello-World/pull/1"}
		}), forge.Event{Kind: forge.KindComment, Action: forge.ActionCreated, Number: 1, OnMergeRequest: true,
			Identity: "comment|Codertocat/Hello-World|mr|1|492700400|created"}},
		{"issue reopened", "issues", forgetest.Read(t, "github/issues_reopened.json"), forge.Event{
			Kind: forge.KindIssue, Action: forge.ActionReopened, Number: 1, Identity: "issue|Codertocat/Hello-World|1|reopened|2021-10-11T16:40:56Z"}},
		// octokit has no issues/closed example: the reopened one, closed.
		{"issue closed", "issues", patched(t, "github/issues_reopened.json", func(m map[string]any) {
			m["action"] = "closed"
			m["issue"].(map[string]any)["closed_at"] = "2021-10-12T08:00:00Z"
		}), forge.Event{Kind: forge.KindIssue, Action: forge.ActionClosed, Number: 1, Identity: "issue|Codertocat/Hello-World|1|closed|2021-10-12T08:00:00Z"}},
		{"pull request closed", "pull_request", forgetest.Read(t, "github/pull_request_closed.json"), forge.Event{
			Kind: forge.KindMergeRequest, Action: forge.ActionClosed, Number: 2, Identity: "mr|Codertocat/Hello-World|2|closed|2019-05-15T15:21:18Z"}},
		{"pull request reopened", "pull_request", forgetest.Read(t, "github/pull_request_reopened.json"), forge.Event{
			Kind: forge.KindMergeRequest, Action: forge.ActionReopened, Number: 2, Identity: "mr|Codertocat/Hello-World|2|reopened|2019-05-15T15:20:33Z"}},
		{"fork", "fork", forgetest.Read(t, "github/fork.json"), forge.Event{
			Kind: forge.KindFork, Action: forge.ActionCreated, Repository: forge.Repository{FullName: repo},
			Fork: forge.Repository{Name: "Hello-World", FullName: "Octocoders/Hello-World", WebURL: "https://github.com/Octocoders/Hello-World",
				CloneURL: "https://github.com/Octocoders/Hello-World.git"},
			Time: time.Date(2019, 5, 15, 15, 20, 42, 0, time.UTC), Identity: "fork|Codertocat/Hello-World|Octocoders/Hello-World"}},
		{"star", "star", forgetest.Read(t, "github/star_created.json"), forge.Event{
			Kind: forge.KindStar, Action: forge.ActionCreated, Actor: forge.Person{Username: "Codertocat"},
			Time: time.Date(2019, 5, 15, 15, 20, 40, 0, time.UTC), Identity: "star|Codertocat/Hello-World|Codertocat|created"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := forgetest.Parse(t, github.Adapter{}, tc.event, tc.body)
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
				{"Repository", ev.Repository.FullName, w.Repository.FullName},
			} {
				if f.want != "" && f.got != f.want {
					t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
				}
			}
			if w.Fork.FullName != "" && ev.Fork != w.Fork {
				t.Errorf("Fork = %+v, want %+v", ev.Fork, w.Fork)
			}
			if !w.Time.IsZero() && !ev.Time.Equal(w.Time) {
				t.Errorf("Time = %v, want %v", ev.Time, w.Time)
			}
		})
	}
}

// TestReadOwnCommentIgnored: a comment carrying Fedforge's marker is not read back.
func TestReadOwnCommentIgnored(t *testing.T) {
	body := patched(t, "github/issue_comment_created.json", func(m map[string]any) {
		m["comment"].(map[string]any)["body"] = "From elsewhere.\n\n<!-- fedforge:idempotency-key=https://b.example/a/1 -->"
	})
	_, err := github.Adapter{}.ParseWebhook(forgetest.SignedHeaders("GitHub", "issue_comment", body, forgetest.Secret), body, forgetest.Secret)
	if !errors.Is(err, forge.ErrIgnoredEvent) {
		t.Fatalf("comment carrying the marker: %v, want ErrIgnoredEvent", err)
	}
}
