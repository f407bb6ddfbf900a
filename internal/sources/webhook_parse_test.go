package sources

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/fedforge/fedforge/internal/forge"
	"net/http"
	"testing"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// payloadCase is one real payload from testdata with what its parse must yield.
type payloadCase struct {
	forge fedv1.SourceType
	event string // the forge's event header value
	file  string
	want  forge.Event // only the fields set here are compared (see checkEvent)
}

// payloads lists every real forge payload in testdata and what it means. Golden
// renderings are made from the ones that are published.
var payloads = map[string]payloadCase{
	"gitlab release": {fedv1.SourceGitLab, "Release Hook", "gitlab/release.json", forge.Event{
		Kind: forge.KindRelease, Action: forge.ActionPublished, Version: "v1.1", Title: "v1.1",
		URL:        "https://example.com/gitlab-org/release-webhook-example/-/releases/v1.1",
		Repository: forge.Repository{Name: "release-webhook-example", FullName: "gitlab-org/release-webhook-example"},
		Body:       "v1.1 has been released", After: "ee0a3fb31ac16e11b9dbb596ad16d4af654d08f8",
		Time:     time.Date(2020, 11, 2, 12, 55, 12, 0, time.UTC),
		Identity: "release|gitlab-org/release-webhook-example|v1.1",
	}},
	"gitlab tag push": {fedv1.SourceGitLab, "Tag Push Hook", "gitlab/tag_push.json", forge.Event{
		Kind: forge.KindTag, Action: forge.ActionCreated, Version: "v1.0.0", URL: "http://example.com/jsmith/example/-/tags/v1.0.0",
		Repository: forge.Repository{FullName: "jsmith/example"}, Actor: forge.Person{Name: "John Smith"},
		Identity: "tag|jsmith/example|v1.0.0",
	}},
	"gitlab push": {fedv1.SourceGitLab, "Push Hook", "gitlab/push.json", forge.Event{
		Kind: forge.KindPush, Action: forge.ActionPushed, Branch: "master", Ref: "refs/heads/master",
		Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		URL:        "http://example.com/mike/diaspora/-/compare/95790bf891e76fee5e1747ab589903a6a1f80f22...da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		Repository: forge.Repository{FullName: "mike/diaspora"}, Actor: forge.Person{Username: "jsmith"},
		TotalCommits: 4, Identity: "push|mike/diaspora|refs/heads/master|da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
	}},
	"gitlab merge request opened": {fedv1.SourceGitLab, "Merge Request Hook", "gitlab/merge_request.json", forge.Event{
		Kind: forge.KindMergeRequest, Action: forge.ActionOpened, Number: 1, Title: "MS-Viewport",
		Branch: "master", SourceBranch: "ms-viewport", URL: "http://example.com/diaspora/merge_requests/1",
		Repository: forge.Repository{FullName: "gitlabhq/gitlab-test"}, Actor: forge.Person{Username: "root"},
		Identity: "mr|gitlabhq/gitlab-test|1|opened",
	}},
	"gitlab issue opened": {fedv1.SourceGitLab, "Issue Hook", "gitlab/issue.json", forge.Event{
		Kind: forge.KindIssue, Action: forge.ActionOpened, Number: 23, Title: "New API: create/update/delete file",
		URL: "http://example.com/diaspora/issues/23", Repository: forge.Repository{FullName: "gitlabhq/gitlab-test"},
		Identity: "issue|gitlabhq/gitlab-test|23|opened",
	}},
	"github release published": {fedv1.SourceGitHub, "release", "github/release_published.json", forge.Event{
		Kind: forge.KindRelease, Action: forge.ActionPublished, Version: "0.0.1",
		URL:        "https://github.com/Codertocat/Hello-World/releases/tag/0.0.1",
		Repository: forge.Repository{Name: "Hello-World", FullName: "Codertocat/Hello-World"}, Actor: forge.Person{Username: "Codertocat"},
		Time:     time.Date(2019, 5, 15, 15, 20, 53, 0, time.UTC),
		Identity: "release|Codertocat/Hello-World|0.0.1",
	}},
	"github push new branch": {fedv1.SourceGitHub, "push", "github/push_new_branch.json", forge.Event{
		Kind: forge.KindPush, Action: forge.ActionPushed, Branch: "master", After: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
		URL:        "https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246",
		Repository: forge.Repository{FullName: "Codertocat/Hello-World"}, TotalCommits: 1,
		Identity: "push|Codertocat/Hello-World|refs/heads/master|6113728f27ae82c7b1a177c8d03f9e96e0adf246",
	}},
	"github create tag": {fedv1.SourceGitHub, "create", "github/create_tag.json", forge.Event{
		Kind: forge.KindTag, Action: forge.ActionCreated, Version: "simple-tag",
		URL:      "https://github.com/Codertocat/Hello-World/releases/tag/simple-tag",
		Identity: "tag|Codertocat/Hello-World|simple-tag",
	}},
	"github pull request opened": {fedv1.SourceGitHub, "pull_request", "github/pull_request_opened.json", forge.Event{
		Kind: forge.KindMergeRequest, Action: forge.ActionOpened, Number: 2, Title: "Update the README with new information.",
		Branch: "master", SourceBranch: "changes", URL: "https://github.com/Codertocat/Hello-World/pull/2",
		Labels: []string{"bug"}, Identity: "mr|Codertocat/Hello-World|2|opened",
	}},
	"github issue opened": {fedv1.SourceGitHub, "issues", "github/issues_opened.json", forge.Event{
		Kind: forge.KindIssue, Action: forge.ActionOpened, Number: 1, Title: "Spelling error in the README file",
		URL: "https://github.com/Codertocat/Hello-World/issues/1", Identity: "issue|Codertocat/Hello-World|1|opened",
	}},
	"gitea release published": {fedv1.SourceGitea, "release", "gitea/release_published.json", forge.Event{
		Kind: forge.KindRelease, Action: forge.ActionPublished, Version: "0.0.5", Title: "Version 0.0.5",
		URL:        "https://git.xxx/anbraten/demo/releases/tag/0.0.5",
		Repository: forge.Repository{Name: "demo", FullName: "anbraten/demo", CloneURL: "https://git.xxx/anbraten/demo.git"},
		Identity:   "release|anbraten/demo|0.0.5",
	}},
	"gitea push": {fedv1.SourceGitea, "push", "gitea/push.json", forge.Event{
		Kind: forge.KindPush, Action: forge.ActionPushed, Branch: "develop", After: "bffeb74224043ba2feb48d137756c8a9331c449a",
		URL:        "http://localhost:3000/gitea/webhooks/compare/28e1879d029cb852e4844d9c718537df08844e03...bffeb74224043ba2feb48d137756c8a9331c449a",
		Repository: forge.Repository{FullName: "gitea/webhooks"}, Actor: forge.Person{Username: "gitea"}, TotalCommits: 1,
		Identity:     "push|gitea/webhooks|refs/heads/develop|bffeb74224043ba2feb48d137756c8a9331c449a",
		DeliveryID:   "f6266f16-1bf3-46a5-9ea4-602e06ead473",
		Time:         time.Date(2017, 3, 13, 17, 52, 11, 0, time.UTC),
		SourceBranch: "",
	}},
	"gitea create tag": {fedv1.SourceGitea, "create", "gitea/create_tag.json", forge.Event{
		Kind: forge.KindTag, Version: "v1.0.0", URL: "http://try.gitea.io/gogits/hello-world/src/tag/v1.0.0",
		Identity: "tag|gogits/hello-world|v1.0.0",
	}},
	"gitea pull request opened": {fedv1.SourceGitea, "pull_request", "gitea/pull_request_opened.json", forge.Event{
		Kind: forge.KindMergeRequest, Action: forge.ActionOpened, Number: 2, Title: "huge improvements",
		Branch: "master", SourceBranch: "feature", Identity: "mr|gogits/hello-world|2|opened",
	}},
	"gitea pull request merged": {fedv1.SourceGitea, "pull_request", "gitea/pull_request_merged.json", forge.Event{
		Kind: forge.KindMergeRequest, Action: forge.ActionMerged, Number: 1, Title: "Adjust file", Branch: "main",
		SourceBranch: "anbraten-patch-1", URL: "https://gitea.com/anbraten/test-repo/pulls/1",
		Time: time.Date(2023, 12, 5, 18, 35, 31, 0, time.UTC), Identity: "mr|anbraten/test-repo|1|merged",
	}},
	"gitea issue opened": {fedv1.SourceGitea, "issues", "gitea/issues_opened.json", forge.Event{
		Kind: forge.KindIssue, Action: forge.ActionOpened, Number: 1, Title: "Problem", Body: "Found a bug",
		URL: "http://try.gitea.io/gogits/hello-world/issues/1", Identity: "issue|gogits/hello-world|1|opened",
	}},
	"forgejo push": {fedv1.SourceForgejo, "push", "forgejo/push.json", forge.Event{
		Kind: forge.KindPush, Branch: "develop", Repository: forge.Repository{FullName: "forgejo/webhooks"},
		Identity: "push|forgejo/webhooks|refs/heads/develop|bffeb74224043ba2feb48d137756c8a9331c449a",
	}},
}

// checkEvent compares the fields of want that are set with got.
func checkEvent(t *testing.T, got *forge.Event, want forge.Event) {
	t.Helper()
	str := func(field, g, w string) {
		if w != "" && g != w {
			t.Errorf("%s = %q, want %q", field, g, w)
		}
	}
	str("Kind", string(got.Kind), string(want.Kind))
	str("Action", got.Action, want.Action)
	str("Version", got.Version, want.Version)
	str("Title", got.Title, want.Title)
	str("URL", got.URL, want.URL)
	str("Body", got.Body, want.Body)
	str("Ref", got.Ref, want.Ref)
	str("Branch", got.Branch, want.Branch)
	str("SourceBranch", got.SourceBranch, want.SourceBranch)
	str("Before", got.Before, want.Before)
	str("After", got.After, want.After)
	str("Identity", got.Identity, want.Identity)
	str("DeliveryID", got.DeliveryID, want.DeliveryID)
	str("Repository.Name", got.Repository.Name, want.Repository.Name)
	str("Repository.FullName", got.Repository.FullName, want.Repository.FullName)
	str("Repository.CloneURL", got.Repository.CloneURL, want.Repository.CloneURL)
	str("Actor.Name", got.Actor.Name, want.Actor.Name)
	str("Actor.Username", got.Actor.Username, want.Actor.Username)
	if want.Number != 0 && got.Number != want.Number {
		t.Errorf("Number = %d, want %d", got.Number, want.Number)
	}
	if want.TotalCommits != 0 && got.TotalCommits != want.TotalCommits {
		t.Errorf("TotalCommits = %d, want %d", got.TotalCommits, want.TotalCommits)
	}
	if !want.Time.IsZero() && !got.Time.Equal(want.Time) {
		t.Errorf("Time = %v, want %v", got.Time, want.Time)
	}
	if want.Labels != nil && !equalStrings(got.Labels, want.Labels) {
		t.Errorf("Labels = %q, want %q", got.Labels, want.Labels)
	}
	if got.Identity == "" {
		t.Error("event has no identity")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseWebhookRealPayloads(t *testing.T) {
	for name, tc := range payloads {
		t.Run(name, func(t *testing.T) {
			body := readTestdata(t, tc.file)
			ev, err := ParseWebhook(tc.forge, signedHeaders(tc.forge, tc.event, body, testSecret), body, testSecret)
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if ev.Forge != tc.forge {
				t.Errorf("Forge = %q, want %q", ev.Forge, tc.forge)
			}
			checkEvent(t, ev, tc.want)
		})
	}
}

func TestParseWebhookCommits(t *testing.T) {
	body := readTestdata(t, "gitlab/push.json")
	ev, err := ParseGitLab(signedHeaders(fedv1.SourceGitLab, "Push Hook", body, testSecret), body, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Commits) != 2 {
		t.Fatalf("got %d commits, want 2", len(ev.Commits))
	}
	first, last := ev.Commits[0], ev.Commits[1]
	if first.ID != "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327" || last.ID != "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" {
		t.Errorf("commits not oldest first: %s, %s", first.ID, last.ID)
	}
	if first.Author.Name != "Jordi Mallach" || first.URL == "" || first.Time.IsZero() {
		t.Errorf("first commit = %+v", first)
	}
	if !ev.Time.Equal(last.Time) {
		t.Errorf("push time %v is not the newest commit's %v", ev.Time, last.Time)
	}
}

// TestParseWebhookAuthentication proves each forge's authentication: the right secret
// in the right header passes, anything else is ErrUnauthorized, before the payload is
// even looked at.
func TestParseWebhookAuthentication(t *testing.T) {
	gitlabBody := readTestdata(t, "gitlab/release.json")
	giteaBody := readTestdata(t, "gitea/release_published.json")
	githubBody := readTestdata(t, "github/release_published.json")
	tests := map[string]struct {
		forge  fedv1.SourceType
		body   []byte
		header func(h http.Header)
		secret []byte
		ok     bool
	}{
		"gitlab valid":               {fedv1.SourceGitLab, gitlabBody, nil, testSecret, true},
		"gitlab secret with newline": {fedv1.SourceGitLab, gitlabBody, nil, append(append([]byte{}, testSecret...), '\n'), true},
		"gitlab wrong token":         {fedv1.SourceGitLab, gitlabBody, func(h http.Header) { h.Set(headerGitLabToken, "nope") }, testSecret, false},
		"gitlab token prefix":        {fedv1.SourceGitLab, gitlabBody, func(h http.Header) { h.Set(headerGitLabToken, string(testSecret[:5])) }, testSecret, false},
		"gitlab missing token":       {fedv1.SourceGitLab, gitlabBody, func(h http.Header) { h.Del(headerGitLabToken) }, testSecret, false},
		"gitlab empty secret":        {fedv1.SourceGitLab, gitlabBody, func(h http.Header) { h.Set(headerGitLabToken, "") }, nil, false},
		"gitea valid":                {fedv1.SourceGitea, giteaBody, nil, testSecret, true},
		"gitea body changed":         {fedv1.SourceGitea, append([]byte(" "), giteaBody...), nil, testSecret, false},
		"gitea missing signature":    {fedv1.SourceGitea, giteaBody, func(h http.Header) { h.Del(headerGiteaSignature) }, testSecret, false},
		"gitea forgejo header only": {fedv1.SourceGitea, giteaBody, func(h http.Header) {
			h.Set(headerForgejoSignature, h.Get(headerGiteaSignature))
			h.Del(headerGiteaSignature)
		}, testSecret, false},
		"gitea signature not hex":     {fedv1.SourceGitea, giteaBody, func(h http.Header) { h.Set(headerGiteaSignature, "zz") }, testSecret, false},
		"forgejo valid":               {fedv1.SourceForgejo, giteaBody, nil, testSecret, true},
		"forgejo gitea header only":   {fedv1.SourceForgejo, giteaBody, func(h http.Header) { h.Del(headerForgejoSignature) }, testSecret, true},
		"forgejo wrong key":           {fedv1.SourceForgejo, giteaBody, func(h http.Header) { h.Set(headerForgejoSignature, hmacHex(giteaBody, []byte("other"))) }, testSecret, false},
		"github valid":                {fedv1.SourceGitHub, githubBody, nil, testSecret, true},
		"github without prefix":       {fedv1.SourceGitHub, githubBody, func(h http.Header) { h.Set(headerGitHubSignature, hmacHex(githubBody, testSecret)) }, testSecret, false},
		"github sha1 header only":     {fedv1.SourceGitHub, githubBody, func(h http.Header) { h.Del(headerGitHubSignature); h.Set("X-Hub-Signature", "sha1=0000") }, testSecret, false},
		"github signature other body": {fedv1.SourceGitHub, githubBody, func(h http.Header) { h.Set(headerGitHubSignature, "sha256="+hmacHex([]byte("{}"), testSecret)) }, testSecret, false},
	}
	events := map[fedv1.SourceType]string{fedv1.SourceGitLab: "Release Hook", fedv1.SourceGitea: "release", fedv1.SourceForgejo: "release", fedv1.SourceGitHub: "release"}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// Signed with the real secret; the case then spoils what it tests.
			h := signedHeaders(tc.forge, events[tc.forge], tc.body, testSecret)
			if name == "gitea body changed" {
				h = signedHeaders(tc.forge, events[tc.forge], tc.body[1:], testSecret)
			}
			if tc.header != nil {
				tc.header(h)
			}
			_, err := ParseWebhook(tc.forge, h, tc.body, tc.secret)
			if tc.ok && err != nil {
				t.Fatalf("want success, got %v", err)
			}
			if !tc.ok && !errors.Is(err, forge.ErrUnauthorized) {
				t.Fatalf("want ErrUnauthorized, got %v", err)
			}
			if !tc.ok && forge.StatusOf(err) != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", forge.StatusOf(err))
			}
		})
	}
}

// TestParseWebhookIgnored covers authentic deliveries Fedforge does not publish: they
// are ErrIgnoredEvent (answered 202), never errors that make the forge retry.
func TestParseWebhookIgnored(t *testing.T) {
	tests := map[string]struct {
		forge fedv1.SourceType
		event string
		file  string
		patch func(map[string]any)
	}{
		"github ping":                  {fedv1.SourceGitHub, "ping", "github/release_published.json", nil},
		"github tag deleted":           {fedv1.SourceGitHub, "push", "github/push_tag_deleted.json", nil},
		"github pull request closed":   {fedv1.SourceGitHub, "pull_request", "github/pull_request_closed.json", nil},
		"github release edited":        {fedv1.SourceGitHub, "release", "github/release_published.json", func(m map[string]any) { m["action"] = "edited" }},
		"github draft release":         {fedv1.SourceGitHub, "release", "github/release_published.json", func(m map[string]any) { m["release"].(map[string]any)["draft"] = true }},
		"github issue closed":          {fedv1.SourceGitHub, "issues", "github/issues_opened.json", func(m map[string]any) { m["action"] = "closed" }},
		"gitlab release update":        {fedv1.SourceGitLab, "Release Hook", "gitlab/release.json", func(m map[string]any) { m["action"] = "update" }},
		"gitlab branch deleted":        {fedv1.SourceGitLab, "Push Hook", "gitlab/push.json", func(m map[string]any) { m["after"] = "0000000000000000000000000000000000000000" }},
		"gitlab confidential issue":    {fedv1.SourceGitLab, "Issue Hook", "gitlab/issue.json", func(m map[string]any) { m["object_attributes"].(map[string]any)["confidential"] = true }},
		"gitlab confidential hook":     {fedv1.SourceGitLab, "Confidential Issue Hook", "gitlab/issue.json", nil},
		"gitlab issue closed":          {fedv1.SourceGitLab, "Issue Hook", "gitlab/issue.json", func(m map[string]any) { m["object_attributes"].(map[string]any)["action"] = "close" }},
		"gitlab merge request update":  {fedv1.SourceGitLab, "Merge Request Hook", "gitlab/merge_request.json", func(m map[string]any) { m["object_attributes"].(map[string]any)["action"] = "update" }},
		"gitlab pipeline":              {fedv1.SourceGitLab, "Pipeline Hook", "gitlab/push.json", nil},
		"gitea branch create":          {fedv1.SourceGitea, "create", "gitea/create_tag.json", func(m map[string]any) { m["ref_type"] = "branch" }},
		"gitea pull request edited":    {fedv1.SourceGitea, "pull_request", "gitea/pull_request_opened.json", func(m map[string]any) { m["action"] = "edited" }},
		"gitea closed without merging": {fedv1.SourceGitea, "pull_request", "gitea/pull_request_merged.json", func(m map[string]any) { m["pull_request"].(map[string]any)["merged"] = false }},
		"gitea wiki":                   {fedv1.SourceGitea, "wiki", "gitea/push.json", nil},
		"forgejo release updated":      {fedv1.SourceForgejo, "release", "gitea/release_published.json", func(m map[string]any) { m["action"] = "updated" }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := readTestdata(t, tc.file)
			if tc.patch != nil {
				var m map[string]any
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatal(err)
				}
				tc.patch(m)
				body, _ = json.Marshal(m)
			}
			ev, err := ParseWebhook(tc.forge, signedHeaders(tc.forge, tc.event, body, testSecret), body, testSecret)
			if !errors.Is(err, forge.ErrIgnoredEvent) {
				t.Fatalf("want ErrIgnoredEvent, got event %+v, error %v", ev, err)
			}
			if forge.StatusOf(err) != http.StatusAccepted {
				t.Fatalf("status %d, want 202", forge.StatusOf(err))
			}
		})
	}
}

// TestParseWebhookMalformed covers bodies that are authentic (correctly signed) but not
// what their event type promises: 400, so that the forge's delivery log shows the error.
func TestParseWebhookMalformed(t *testing.T) {
	tests := map[string]struct {
		forge fedv1.SourceType
		event string
		body  string
	}{
		"gitlab not json":          {fedv1.SourceGitLab, "Push Hook", "ref=refs/heads/main"},
		"gitlab array":             {fedv1.SourceGitLab, "Push Hook", `[{"ref":"x"}]`},
		"gitlab release no tag":    {fedv1.SourceGitLab, "Release Hook", `{"action":"create","project":{"path_with_namespace":"a/b"}}`},
		"gitlab push wrong type":   {fedv1.SourceGitLab, "Push Hook", `{"ref": 5}`},
		"github push no repo":      {fedv1.SourceGitHub, "push", `{"ref":"refs/heads/main","after":"1"}`},
		"github release no tag":    {fedv1.SourceGitHub, "release", `{"action":"published","release":{},"repository":{"full_name":"a/b"}}`},
		"gitea truncated":          {fedv1.SourceGitea, "push", `{"ref":"refs/heads/main",`},
		"gitea deeply nested":      {fedv1.SourceGitea, "push", string(bytes.Repeat([]byte(`{"a":`), 40)) + "1" + string(bytes.Repeat([]byte(`}`), 40))},
		"forgejo issue no number":  {fedv1.SourceForgejo, "issues", `{"action":"opened","issue":{},"repository":{"full_name":"a/b"}}`},
		"gitlab issue without iid": {fedv1.SourceGitLab, "Issue Hook", `{"object_kind":"issue","object_attributes":{"action":"open"},"project":{"path_with_namespace":"a/b"}}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := []byte(tc.body)
			_, err := ParseWebhook(tc.forge, signedHeaders(tc.forge, tc.event, body, testSecret), body, testSecret)
			if !errors.Is(err, forge.ErrMalformed) || forge.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("want ErrMalformed (400), got %v", err)
			}
		})
	}
}

// TestTagIdentitiesAgree: GitHub and Gitea announce a new tag twice (create and a tag
// push); both must map to the same identity so that the second posts nothing new.
func TestTagIdentitiesAgree(t *testing.T) {
	create := readTestdata(t, "github/create_tag.json")
	ev1, err := ParseGitHub(signedHeaders(fedv1.SourceGitHub, "create", create, testSecret), create, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	var push map[string]any
	if err := json.Unmarshal(readTestdata(t, "github/push_tag_deleted.json"), &push); err != nil {
		t.Fatal(err)
	}
	// The same tag pushed rather than deleted (the real payload deletes simple-tag).
	push["deleted"], push["created"] = false, true
	push["before"], push["after"] = "0000000000000000000000000000000000000000", "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	body, _ := json.Marshal(push)
	ev2, err := ParseGitHub(signedHeaders(fedv1.SourceGitHub, "push", body, testSecret), body, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if ev1.Kind != forge.KindTag || ev2.Kind != forge.KindTag || ev1.Identity != ev2.Identity {
		t.Fatalf("create %q/%q and push %q/%q disagree", ev1.Kind, ev1.Identity, ev2.Kind, ev2.Identity)
	}
}
