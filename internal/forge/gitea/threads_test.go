package gitea_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/gitea"
)

// TestReadRecordedThreadEvents parses the deliveries a real Gitea 1.27.3 sent
// (testdata/gitea/real, recorded by TestReaderAgainstRealGitea) with both adapters and
// pins every field phase 2 renders from, identities included: they name the activities,
// so a change here is a change of published ids.
func TestReadRecordedThreadEvents(t *testing.T) {
	at := time.Date(2026, 12, 3, 11, 28, 20, 0, time.UTC)
	const page = "http://127.0.0.1:33391/fedforge-admin/upstream"
	tests := []struct {
		file, event string
		want        forge.Event
	}{
		{"issue_comment_created", "issue_comment", forge.Event{Kind: forge.KindComment, Action: forge.ActionCreated, Number: 1, CommentID: 1,
			Title: "Crash on start", Body: "Same here, on **arm64**.", URL: page + "/issues/1#issuecomment-1", Time: at,
			Actor:    forge.Person{Username: "carol", URL: "http://127.0.0.1:33391/carol"},
			Identity: "comment|fedforge-admin/upstream|issue|1|1|created"}},
		{"issue_comment_edited", "issue_comment", forge.Event{Kind: forge.KindComment, Action: forge.ActionEdited, Number: 1, CommentID: 1,
			Body: "Same here, on **arm64** and amd64.", Time: at,
			Identity: "comment|fedforge-admin/upstream|issue|1|1|edited|2026-12-03T11:28:20Z|bd7e9d22471a7166"}},
		{"issue_comment_deleted", "issue_comment", forge.Event{Kind: forge.KindComment, Action: forge.ActionDeleted, Number: 1, CommentID: 2,
			Identity: "comment|fedforge-admin/upstream|issue|1|2|deleted"}},
		{"pull_request_comment_created", "issue_comment", forge.Event{Kind: forge.KindComment, Action: forge.ActionCreated, Number: 2, CommentID: 7,
			OnMergeRequest: true, URL: page + "/pulls/2#issuecomment-7",
			Identity: "comment|fedforge-admin/upstream|mr|2|7|created"}},
		{"issues_closed", "issues", forge.Event{Kind: forge.KindIssue, Action: forge.ActionClosed, Number: 1, Title: "Crash on start",
			URL: page + "/issues/1", Time: at, Actor: forge.Person{Username: "fedforge-admin"},
			Identity: "issue|fedforge-admin/upstream|1|closed|2026-12-03T11:28:20Z"}},
		{"issues_reopened", "issues", forge.Event{Kind: forge.KindIssue, Action: forge.ActionReopened, Number: 1, Time: at,
			Identity: "issue|fedforge-admin/upstream|1|reopened|2026-12-03T11:28:20Z"}},
		{"pull_request_closed", "pull_request", forge.Event{Kind: forge.KindMergeRequest, Action: forge.ActionClosed, Number: 2,
			Title: "Add a feature", URL: page + "/pulls/2", Identity: "mr|fedforge-admin/upstream|2|closed|2026-12-03T11:28:24Z"}},
		{"pull_request_reopened", "pull_request", forge.Event{Kind: forge.KindMergeRequest, Action: forge.ActionReopened, Number: 2,
			Identity: "mr|fedforge-admin/upstream|2|reopened|2026-12-03T11:28:25Z"}},
		{"fork", "fork", forge.Event{Kind: forge.KindFork, Action: forge.ActionCreated,
			Repository: forge.Repository{Name: "upstream", FullName: "fedforge-admin/upstream", WebURL: page},
			Fork: forge.Repository{Name: "upstream", FullName: "carol/upstream", WebURL: "http://127.0.0.1:33391/carol/upstream",
				CloneURL: "http://127.0.0.1:33391/carol/upstream.git"},
			URL: "http://127.0.0.1:33391/carol/upstream", Actor: forge.Person{Username: "carol"}, Time: at.Add(5 * time.Second),
			Identity: "fork|fedforge-admin/upstream|carol/upstream"}},
	}
	for _, tc := range tests {
		for _, r := range []forge.Reader{gitea.Gitea{}, gitea.Forgejo{}} {
			t.Run(tc.file+"/"+string(r.Type()), func(t *testing.T) {
				ev := forgetest.Parse(t, r, tc.event, forgetest.Read(t, "gitea/real/"+tc.file+".json"))
				checkEvent(t, ev, tc.want)
				if tc.want.Title != "" && ev.Title != tc.want.Title {
					t.Errorf("Title = %q, want %q", ev.Title, tc.want.Title)
				}
				if !tc.want.Time.IsZero() && !ev.Time.Equal(tc.want.Time) {
					t.Errorf("Time = %v, want %v", ev.Time, tc.want.Time)
				}
				if tc.want.Actor.URL != "" && ev.Actor.URL != tc.want.Actor.URL {
					t.Errorf("Actor.URL = %q, want %q", ev.Actor.URL, tc.want.Actor.URL)
				}
				if ev.Identity != tc.want.Identity {
					t.Errorf("Identity = %q, want %q", ev.Identity, tc.want.Identity)
				}
			})
		}
	}
}

// TestReadFedforgeWritesIgnored: what Fedforge wrote into the forge (its hidden key
// marker in the body) is ErrIgnoredEvent, so that it never comes back out.
func TestReadFedforgeWritesIgnored(t *testing.T) {
	body := forgetest.Read(t, "gitea/real/issue_comment_fedforge.json")
	_, err := gitea.Gitea{}.ParseWebhook(forgetest.SignedHeaders("Gitea", "issue_comment", body, forgetest.Secret), body, forgetest.Secret)
	if !errors.Is(err, forge.ErrIgnoredEvent) {
		t.Fatalf("comment carrying the marker: %v, want ErrIgnoredEvent", err)
	}
}

// TestMarkerInStep: the forge-neutral check every reader uses recognises what the Gitea
// writer writes.
func TestMarkerInStep(t *testing.T) {
	body := gitea.Attributed("x", forge.FormatPlain, forge.RemoteAuthor{Handle: "@a@b.example"}, "", "https://b.example/activities/1", "Written")
	if !forge.WrittenByFedforge(body) || forge.WrittenByFedforge("a comment quoting fedforge:idempotency-key") {
		t.Fatalf("forge.WrittenByFedforge disagrees with gitea.KeyMarker")
	}
}

// TestReadLabelUpdated (issue 14): Gitea sends a label added to a pull request as
// pull_request with action label_updated (event type pull_request_label); it is read as
// ActionLabeled with the labels after the change and the branches, so that the server
// can offer a pull request labelled for upstream. The payload has the fields Gitea 1.27.3
// sends for it (services/webhook/notifier.go, IssueChangeLabels).
func TestReadLabelUpdated(t *testing.T) {
	body := []byte(`{"action":"label_updated","number":1,
		"pull_request":{"number":1,"title":"Fix the build","body":"b","html_url":"http://g/alice/project/pulls/1",
			"updated_at":"2026-12-03T11:28:20Z","user":{"login":"alice"},"labels":[{"name":"upstream"},{"name":"needs-review"}],
			"base":{"ref":"main"},"head":{"ref":"fix"}},
		"repository":{"name":"project","full_name":"alice/project","html_url":"http://g/alice/project"},
		"sender":{"login":"alice"}}`)
	for _, r := range []forge.Reader{gitea.Gitea{}, gitea.Forgejo{}} {
		ev := forgetest.Parse(t, r, "pull_request", body)
		if ev.Kind != forge.KindMergeRequest || ev.Action != forge.ActionLabeled || ev.Number != 1 || ev.SourceBranch != "fix" ||
			ev.Branch != "main" || len(ev.Labels) != 2 || ev.Labels[0] != "upstream" {
			t.Errorf("%s: label_updated read as %+v", r.Type(), ev)
		}
	}
}
