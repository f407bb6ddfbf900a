package forgetest

import (
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
)

// Payload is one real payload from testdata with what its parse must yield.
type Payload struct {
	Forge fedv1.SourceType
	Event string      // the forge's event header value
	File  string      // under internal/forge/testdata
	Want  forge.Event // only the fields set here are compared by the registry's tests
}

// Payloads lists every real forge payload in testdata and what it means. Golden
// renderings are made from the ones that are published.
var Payloads = map[string]Payload{
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
	"gitlab comment on an issue": {fedv1.SourceGitLab, "Note Hook", "gitlab/note_issue.json", forge.Event{
		Kind: forge.KindComment, Action: forge.ActionCreated, Number: 17, Title: "test", Body: "Hello world",
		URL:      "http://example.com/gitlab-org/gitlab-test/issues/17#note_1241",
		Identity: "comment|gitlab-org/gitlab-test|issue|17|1241|created",
	}},
	"gitlab comment on a merge request": {fedv1.SourceGitLab, "Note Hook", "gitlab/note_merge_request.json", forge.Event{
		Kind: forge.KindComment, Action: forge.ActionCreated, Number: 1, Identity: "comment|gitlab-org/gitlab-test|mr|1|1244|created",
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
	"github comment created": {fedv1.SourceGitHub, "issue_comment", "github/issue_comment_created.json", forge.Event{
		Kind: forge.KindComment, Action: forge.ActionCreated, Number: 1, Identity: "comment|Codertocat/Hello-World|issue|1|492700400|created",
	}},
	"github comment edited": {fedv1.SourceGitHub, "issue_comment", "github/issue_comment_edited.json", forge.Event{
		Kind: forge.KindComment, Action: forge.ActionEdited, Number: 1,
	}},
	"github comment deleted": {fedv1.SourceGitHub, "issue_comment", "github/issue_comment_deleted.json", forge.Event{
		Kind: forge.KindComment, Action: forge.ActionDeleted, Number: 1, Identity: "comment|Codertocat/Hello-World|issue|1|492700400|deleted",
	}},
	"github issue reopened": {fedv1.SourceGitHub, "issues", "github/issues_reopened.json", forge.Event{
		Kind: forge.KindIssue, Action: forge.ActionReopened, Number: 1, Identity: "issue|Codertocat/Hello-World|1|reopened|2021-10-11T16:40:56Z",
	}},
	"github pull request closed": {fedv1.SourceGitHub, "pull_request", "github/pull_request_closed.json", forge.Event{
		Kind: forge.KindMergeRequest, Action: forge.ActionClosed, Number: 2, Identity: "mr|Codertocat/Hello-World|2|closed|2019-05-15T15:21:18Z",
	}},
	"github pull request reopened": {fedv1.SourceGitHub, "pull_request", "github/pull_request_reopened.json", forge.Event{
		Kind: forge.KindMergeRequest, Action: forge.ActionReopened, Number: 2, Identity: "mr|Codertocat/Hello-World|2|reopened|2019-05-15T15:20:33Z",
	}},
	"github fork": {fedv1.SourceGitHub, "fork", "github/fork.json", forge.Event{
		Kind: forge.KindFork, Action: forge.ActionCreated, Identity: "fork|Codertocat/Hello-World|Octocoders/Hello-World",
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
		MergeCommit: "f2440f050054df0f8ecabcace648f1683509064c",
	}},
	"gitea issue opened": {fedv1.SourceGitea, "issues", "gitea/issues_opened.json", forge.Event{
		Kind: forge.KindIssue, Action: forge.ActionOpened, Number: 1, Title: "Problem", Body: "Found a bug",
		URL: "http://try.gitea.io/gogits/hello-world/issues/1", Identity: "issue|gogits/hello-world|1|opened",
	}},
	"gitea comment created": {fedv1.SourceGitea, "issue_comment", "gitea/real/issue_comment_created.json", forge.Event{
		Kind: forge.KindComment, Action: forge.ActionCreated, Number: 1, Title: "Crash on start", Body: "Same here, on **arm64**.",
		URL:      "http://127.0.0.1:33391/fedforge-admin/upstream/issues/1#issuecomment-1",
		Actor:    forge.Person{Username: "carol"},
		Identity: "comment|fedforge-admin/upstream|issue|1|1|created",
	}},
	"gitea comment edited": {fedv1.SourceGitea, "issue_comment", "gitea/real/issue_comment_edited.json", forge.Event{
		Kind: forge.KindComment, Action: forge.ActionEdited, Number: 1, Body: "Same here, on **arm64** and amd64.",
		Identity: "comment|fedforge-admin/upstream|issue|1|1|edited|2026-12-03T11:28:20Z|bd7e9d22471a7166",
	}},
	"gitea comment deleted": {fedv1.SourceGitea, "issue_comment", "gitea/real/issue_comment_deleted.json", forge.Event{
		Kind: forge.KindComment, Action: forge.ActionDeleted, Number: 1, Identity: "comment|fedforge-admin/upstream|issue|1|2|deleted",
	}},
	"gitea pull request comment": {fedv1.SourceGitea, "issue_comment", "gitea/real/pull_request_comment_created.json", forge.Event{
		Kind: forge.KindComment, Action: forge.ActionCreated, Number: 2, Identity: "comment|fedforge-admin/upstream|mr|2|7|created",
	}},
	"gitea issue closed": {fedv1.SourceGitea, "issues", "gitea/real/issues_closed.json", forge.Event{
		Kind: forge.KindIssue, Action: forge.ActionClosed, Number: 1, Title: "Crash on start",
		Identity: "issue|fedforge-admin/upstream|1|closed|2026-12-03T11:28:20Z",
	}},
	"gitea issue reopened": {fedv1.SourceGitea, "issues", "gitea/real/issues_reopened.json", forge.Event{
		Kind: forge.KindIssue, Action: forge.ActionReopened, Number: 1, Identity: "issue|fedforge-admin/upstream|1|reopened|2026-12-03T11:28:20Z",
	}},
	"gitea pull request closed": {fedv1.SourceGitea, "pull_request", "gitea/real/pull_request_closed.json", forge.Event{
		Kind: forge.KindMergeRequest, Action: forge.ActionClosed, Number: 2, Identity: "mr|fedforge-admin/upstream|2|closed|2026-12-03T11:28:24Z",
	}},
	"gitea pull request reopened": {fedv1.SourceGitea, "pull_request", "gitea/real/pull_request_reopened.json", forge.Event{
		Kind: forge.KindMergeRequest, Action: forge.ActionReopened, Number: 2, Identity: "mr|fedforge-admin/upstream|2|reopened|2026-12-03T11:28:25Z",
	}},
	"gitea fork": {fedv1.SourceGitea, "fork", "gitea/real/fork.json", forge.Event{
		Kind: forge.KindFork, Action: forge.ActionCreated, URL: "http://127.0.0.1:33391/carol/upstream",
		Repository: forge.Repository{Name: "upstream", FullName: "fedforge-admin/upstream"}, Actor: forge.Person{Username: "carol"},
		Identity: "fork|fedforge-admin/upstream|carol/upstream",
	}},
	"forgejo push": {fedv1.SourceForgejo, "push", "forgejo/push.json", forge.Event{
		Kind: forge.KindPush, Branch: "develop", Repository: forge.Repository{FullName: "forgejo/webhooks"},
		Identity: "push|forgejo/webhooks|refs/heads/develop|bffeb74224043ba2feb48d137756c8a9331c449a",
	}},
}
