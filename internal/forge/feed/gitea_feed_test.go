package feed

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	"github.com/mmcdole/gofeed"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// EnvRecordFeeds names the variable that makes TestRealGiteaFeeds write the feeds it
// fetched into internal/forge/testdata/feeds/ (how gitea_*.atom were made).
const EnvRecordFeeds = "FEDFORGE_RECORD_GITEA"

// TestRealGiteaFeeds fetches the activity feeds of a real Gitea (a repository's and a
// user's, after an issue, a comment, a commit, a pull request and a release) and its
// releases feed through the guarded fetcher, and checks that every entry is classified
// as what it is: only releases are releases.
func TestRealGiteaFeeds(t *testing.T) {
	g := giteatest.Start(t)
	repo, _, err := g.Client.CreateRepo(sdk.CreateRepoOption{Name: "feedy", AutoInit: true, Readme: "Default", DefaultBranch: "main"})
	if err != nil {
		t.Fatalf("create repository on %s: %v", g.URL, err)
	}
	owner := repo.Owner.UserName
	issue, _, err := g.Client.CreateIssue(owner, repo.Name, sdk.CreateIssueOption{Title: "Crash on start", Body: "It crashes."})
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	if _, _, err := g.Client.CreateIssueComment(owner, repo.Name, issue.Index, sdk.CreateIssueCommentOption{Body: "Same here."}); err != nil {
		t.Fatalf("comment: %v", err)
	}
	if _, _, err := g.Client.CreateFile(owner, repo.Name, "feature.txt", sdk.CreateFileOptions{
		FileOptions: sdk.FileOptions{Message: "Add a feature", BranchName: "main", NewBranchName: "feature"}, Content: "ZmVhdHVyZQo="}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if _, _, err := g.Client.CreatePullRequest(owner, repo.Name, sdk.CreatePullRequestOption{Head: "feature", Base: "main", Title: "Add a feature"}); err != nil {
		t.Fatalf("pull request: %v", err)
	}
	closed := sdk.StateClosed
	if _, _, err := g.Client.EditIssue(owner, repo.Name, issue.Index, sdk.EditIssueOption{State: &closed}); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, _, err := g.Client.CreateRelease(owner, repo.Name, sdk.CreateReleaseOption{TagName: "v1.0.0", Target: "main", Title: "Feedy 1.0", Note: "First."}); err != nil {
		t.Fatalf("release: %v", err)
	}

	fetcher := loopbackFetcher()
	// kindsOf reads a feed's entries as Fedforge does.
	kindsOf := func(f *gofeed.Feed, src *fedv1.EventSource) map[forge.Kind]int {
		kinds := map[forge.Kind]int{}
		for _, e := range feedEntries(f) {
			kinds[feedEvent(f, e, src).Kind]++
		}
		return kinds
	}
	// fetch reads path until it has wantEntries entries and one of each of want (Gitea
	// records actions from a queue, in any order: a push's may come after the others).
	fetch := func(path string, wantEntries int, src *fedv1.EventSource, want []forge.Kind) *gofeed.Feed {
		t.Helper()
		var body []byte
		deadline := time.Now().Add(30 * time.Second) // Gitea records actions from a queue; a bound, not a measurement
		for {
			resp, err := fetcher.FetchFeed(context.Background(), g.URL+path, Validators{})
			if err != nil {
				t.Fatalf("fetch %s%s: %v", g.URL, path, err)
			}
			body = resp.Body
			f, err := gofeed.NewParser().ParseString(string(body))
			if err != nil {
				t.Fatalf("parse %s: %v", path, err)
			}
			complete := len(f.Items) >= wantEntries
			for k := range want {
				complete = complete && kindsOf(f, src)[want[k]] > 0
			}
			if complete || time.Now().After(deadline) {
				if os.Getenv(EnvRecordFeeds) != "" {
					name := "gitea_" + strings.NewReplacer("/", "_", ".", "_").Replace(strings.Trim(path, "/")) + ".xml"
					if err := os.WriteFile(filepath.Join(forgetest.ModuleRoot(t), "internal", "forge", "testdata", "feeds", name), body, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return f
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, tc := range []struct {
		path string
		min  int
	}{
		{"/" + repo.FullName + ".atom", 1},
		{"/" + owner + ".atom", 5},
		{"/" + repo.FullName + "/releases.rss", 1},
	} {
		t.Run(tc.path, func(t *testing.T) {
			src := &fedv1.EventSource{Name: "f", Type: fedv1.SourceFeed, Feed: &fedv1.FeedSource{URL: g.URL + tc.path}}
			var want []forge.Kind
			switch {
			case strings.HasSuffix(tc.path, "releases.rss"):
			case tc.path == "/"+owner+".atom":
				want = []forge.Kind{forge.KindIssue, forge.KindComment, forge.KindRelease, forge.KindMergeRequest, forge.KindPush, forge.KindTag}
			default:
				want = []forge.Kind{forge.KindPush} // a repository's feed: its default branch's commits
			}
			f := fetch(tc.path, tc.min, src, want)
			kinds := map[forge.Kind]int{}
			for _, e := range feedEntries(f) {
				ev := feedEvent(f, e, src)
				kinds[ev.Kind]++
				t.Logf("%s %q %s", ev.Kind, e.item.Title, e.item.Link)
				if ev.Kind == forge.KindRelease && !strings.Contains(e.item.Link, "/releases/tag/") {
					t.Errorf("entry %q (%s) read as a release", e.item.Title, e.item.Link)
				}
			}
			if strings.HasSuffix(tc.path, "releases.rss") {
				if kinds[forge.KindRelease] != len(f.Items) {
					t.Errorf("releases feed read as %v", kinds)
				}
				return
			}
			for _, k := range want {
				if kinds[k] == 0 {
					t.Errorf("no %s entry in the activity feed: %v", k, kinds)
				}
			}
		})
	}
}
