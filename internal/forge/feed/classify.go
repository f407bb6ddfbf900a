package feed

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/mmcdole/gofeed"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
)

// Feed entries are of two sorts (issue 12). A release or tag feed (GitHub
// releases.atom and tags.atom, GitLab /-/tags?format=atom, Gitea and Forgejo
// releases.rss and tags.rss) lists versions: every entry is a Release, rendered as one.
// An activity feed (a user's or a repository's feed on Gitea, Forgejo, GitHub or GitLab,
// or any other feed) lists what happened: each entry is classified by what it links to
// and rendered with the forge's own title as its headline, so that a push or a comment
// is never announced as a release.

// releaseFeedSuffixes end the path of the release and tag feeds of forges.
var releaseFeedSuffixes = []string{"/releases.atom", "/releases.rss", "/releases.xml", "/tags.atom", "/tags.rss", "/-/tags", "/-/releases"}

// isReleaseFeed reports whether the source's feed URL is a forge's release or tag feed.
func isReleaseFeed(feedURL string) bool {
	u, err := url.Parse(feedURL)
	if err != nil {
		return false
	}
	p := strings.TrimRight(strings.ToLower(u.Path), "/")
	for _, s := range releaseFeedSuffixes {
		if strings.HasSuffix(p, s) {
			return true
		}
	}
	return false
}

// githubEventID matches the entry ids of GitHub's activity feeds
// ("tag:github.com,2008:PushEvent/123"); githubRelease those of its releases and tags
// feeds ("tag:github.com,2008:Repository/123/v1.0").
var (
	githubEventID = regexp.MustCompile(`^tag:github\.com,2008:([A-Za-z]+)Event/`)
	githubRelease = regexp.MustCompile(`^tag:github\.com,2008:Repository/`)
)

// githubEventKinds maps GitHub's event types (docs.github.com, "GitHub event types") to kinds.
var githubEventKinds = map[string]forge.Kind{
	"Release": forge.KindRelease, "Push": forge.KindPush, "Issues": forge.KindIssue,
	"IssueComment": forge.KindComment, "CommitComment": forge.KindComment, "PullRequestReviewComment": forge.KindComment,
	"PullRequest": forge.KindMergeRequest, "PullRequestReview": forge.KindMergeRequest,
	"Fork": forge.KindFork, "Watch": forge.KindStar,
}

// linkKinds classify an entry by the path of its link, in order; the fragment is checked
// separately. The paths are those of Gitea and Forgejo, GitHub and GitLab pages.
var linkKinds = []struct {
	re   *regexp.Regexp
	kind forge.Kind
}{
	{regexp.MustCompile(`/(-/)?releases/tag/`), forge.KindRelease},
	{regexp.MustCompile(`/(-/)?(pull|pulls|merge_requests)/\d+`), forge.KindMergeRequest},
	{regexp.MustCompile(`/(-/)?issues/\d+`), forge.KindIssue},
	{regexp.MustCompile(`/(-/)?(commit|commits|compare)/|/src/branch/|/-/tree/`), forge.KindPush},
	{regexp.MustCompile(`/src/tag/|/(-/)?tags/|/releases/tag/`), forge.KindTag},
}

// classify says what a feed entry is: in a release feed always a Release, otherwise
// from GitHub's entry id, else from its link. A link to a comment anchor is a Comment,
// unless the title says the entry closed or reopened the thread (Gitea links a close to
// the comment that records it). The title check is English, as Gitea and Forgejo write
// feed titles in the instance's default language, which is English unless changed; a
// miss only changes the kind, not what the post says (the forge's own title).
func classify(it *gofeed.Item, releaseFeed bool) forge.Kind {
	if releaseFeed {
		return forge.KindRelease
	}
	id := strings.TrimSpace(it.GUID)
	if m := githubEventID.FindStringSubmatch(id); m != nil {
		if k, ok := githubEventKinds[m[1]]; ok {
			return k
		}
		return forge.KindActivity
	}
	if githubRelease.MatchString(id) {
		return forge.KindRelease
	}
	u, err := url.Parse(strings.TrimSpace(it.Link))
	if err != nil {
		return forge.KindActivity
	}
	title := strings.ToLower(htmlToText(it.Title))
	for _, lk := range linkKinds {
		if !lk.re.MatchString(u.Path) {
			continue
		}
		comment := strings.HasPrefix(u.Fragment, "issuecomment-") || strings.HasPrefix(u.Fragment, "note_") ||
			strings.HasPrefix(u.Fragment, "discussion_r")
		if (lk.kind == forge.KindIssue || lk.kind == forge.KindMergeRequest) && comment &&
			!strings.Contains(title, "closed") && !strings.Contains(title, "reopened") {
			return forge.KindComment
		}
		return lk.kind
	}
	return forge.KindActivity
}

// htmlToText is the text of a title that may carry markup (Gitea's titles link the
// repository and the issue).
func htmlToText(s string) string {
	return strings.TrimSpace(render.HTMLText(s))
}
