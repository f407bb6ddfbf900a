// Package github is Fedforge's GitHub adapter: it verifies GitHub webhooks
// (X-Hub-Signature-256) and reads their payloads into forge.Events. Phase 2 adds the
// write side (forge.Writer) here.
package github

import (
	"cmp"
	"fmt"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/webhook"
	"net/http"
	"strconv"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// GitHub webhook headers (docs.github.com, "Validating webhook deliveries").
const (
	headerGitHubSignature = "X-Hub-Signature-256"
	headerGitHubEvent     = "X-GitHub-Event"
	headerGitHubDelivery  = "X-GitHub-Delivery"
)

type ghUser struct {
	Login   string `json:"login"`
	Name    string `json:"name"`
	HTMLURL string `json:"html_url"`
}

func (u ghUser) person() forge.Person {
	return forge.Person{Name: u.Name, Username: u.Login, URL: u.HTMLURL}
}

type ghRepo struct {
	Name      string `json:"name"`
	FullName  string `json:"full_name"`
	HTMLURL   string `json:"html_url"`
	CloneURL  string `json:"clone_url"`
	CreatedAt any    `json:"created_at"` // a date, or Unix seconds in push payloads
}

func (r ghRepo) repo() forge.Repository {
	return forge.Repository{Name: r.Name, FullName: r.FullName, WebURL: r.HTMLURL, CloneURL: r.CloneURL}
}

type ghLabel struct {
	Name string `json:"name"`
}

type ghPayload struct {
	Action string `json:"action"`
	// push and create
	Ref     string `json:"ref"`
	RefType string `json:"ref_type"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted"`
	Compare string `json:"compare"`
	Commits []struct {
		ID        string `json:"id"`
		Message   string `json:"message"`
		Timestamp string `json:"timestamp"`
		URL       string `json:"url"`
		Author    struct {
			Name     string `json:"name"`
			Username string `json:"username"`
		} `json:"author"`
	} `json:"commits"`
	Release *struct {
		TagName     string `json:"tag_name"`
		Name        string `json:"name"`
		Body        string `json:"body"`
		HTMLURL     string `json:"html_url"`
		Draft       bool   `json:"draft"`
		Prerelease  bool   `json:"prerelease"`
		CreatedAt   string `json:"created_at"`
		PublishedAt string `json:"published_at"`
		Author      ghUser `json:"author"`
	} `json:"release"`
	PullRequest *struct {
		Number    int64     `json:"number"`
		Title     string    `json:"title"`
		Body      string    `json:"body"`
		HTMLURL   string    `json:"html_url"`
		Merged    bool      `json:"merged"`
		MergedAt  string    `json:"merged_at"`
		CreatedAt string    `json:"created_at"`
		UpdatedAt string    `json:"updated_at"`
		ClosedAt  string    `json:"closed_at"`
		User      ghUser    `json:"user"`
		MergedBy  *ghUser   `json:"merged_by"`
		Labels    []ghLabel `json:"labels"`
		Base      struct {
			Ref string `json:"ref"`
		} `json:"base"`
		Head struct {
			Ref string `json:"ref"`
		} `json:"head"`
	} `json:"pull_request"`
	Issue *struct {
		Number      int64     `json:"number"`
		Title       string    `json:"title"`
		Body        string    `json:"body"`
		HTMLURL     string    `json:"html_url"`
		CreatedAt   string    `json:"created_at"`
		UpdatedAt   string    `json:"updated_at"`
		ClosedAt    string    `json:"closed_at"`
		User        ghUser    `json:"user"`
		Labels      []ghLabel `json:"labels"`
		PullRequest any       `json:"pull_request"`
	} `json:"issue"`
	// issue_comment
	Comment *struct {
		ID        int64  `json:"id"`
		Body      string `json:"body"`
		HTMLURL   string `json:"html_url"`
		User      ghUser `json:"user"`
		CreatedAt string `json:"created_at"`
		UpdatedAt string `json:"updated_at"`
	} `json:"comment"`
	// fork: "forkee" is the new fork, "repository" the upstream.
	Forkee *ghRepo `json:"forkee"`
	// star
	StarredAt  string `json:"starred_at"`
	Repository ghRepo `json:"repository"`
	Sender     ghUser `json:"sender"`
}

// Adapter reads GitHub; it holds no state, so the zero value is ready.
type Adapter struct{}

var _ forge.Reader = Adapter{}

// Type implements forge.Reader.
func (Adapter) Type() fedv1.SourceType { return fedv1.SourceGitHub }

// ParseWebhook verifies a GitHub webhook (X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
// the body>) and parses release, push, create (tag), pull_request, issues, issue_comment,
// fork and star events. The SHA-1 X-Hub-Signature header is not accepted.
func (Adapter) ParseWebhook(h http.Header, body, secret []byte) (*forge.Event, error) {
	sig, ok := strings.CutPrefix(h.Get(headerGitHubSignature), "sha256=")
	if !ok || !webhook.VerifyHMAC(sig, body, secret) {
		return nil, fmt.Errorf("%w: %s", forge.ErrUnauthorized, headerGitHubSignature)
	}
	ev, err := parseGitHubEvent(h.Get(headerGitHubEvent), body)
	if err != nil {
		return nil, err
	}
	ev.Forge = fedv1.SourceGitHub
	ev.DeliveryID = h.Get(headerGitHubDelivery)
	return ev, nil
}

func parseGitHubEvent(event string, body []byte) (*forge.Event, error) {
	switch event {
	case "release", "push", "create", "pull_request", "issues", "issue_comment", "fork", "star":
	default:
		// Includes "ping", sent when the webhook is created.
		return nil, fmt.Errorf("%w: GitHub %q", forge.ErrIgnoredEvent, event)
	}
	var p ghPayload
	if err := webhook.DecodePayload(body, &p); err != nil {
		return nil, err
	}
	r := p.Repository
	if r.FullName == "" {
		return nil, fmt.Errorf("%w: %s without repository", forge.ErrMalformed, event)
	}
	repo := r.repo()
	ev := &forge.Event{Repository: repo, Actor: p.Sender.person()}
	switch event {
	case "issue_comment":
		return githubComment(ev, &p)
	case "fork":
		return githubFork(ev, &p)
	case "star":
		return githubStar(ev, &p)
	case "release":
		rel := p.Release
		if rel == nil || rel.TagName == "" {
			return nil, fmt.Errorf("%w: release without tag", forge.ErrMalformed)
		}
		if p.Action != "published" || rel.Draft {
			return nil, fmt.Errorf("%w: release %s", forge.ErrIgnoredEvent, p.Action)
		}
		ev.Kind, ev.Action, ev.Actor = forge.KindRelease, forge.ActionPublished, rel.Author.person()
		ev.Title, ev.Version, ev.URL, ev.Body, ev.BodyFormat = rel.Name, rel.TagName, rel.HTMLURL, rel.Body, forge.FormatMarkdown
		ev.Ref, ev.Prerelease, ev.Time = "refs/tags/"+rel.TagName, rel.Prerelease, webhook.FirstTime(rel.PublishedAt, rel.CreatedAt)
		ev.Identity = forge.Identity("release", repo.FullName, rel.TagName)
		return ev, nil
	case "create":
		if p.RefType != "tag" || p.Ref == "" {
			return nil, fmt.Errorf("%w: create %s", forge.ErrIgnoredEvent, p.RefType)
		}
		return githubTag(ev, p.Ref, "")
	case "push":
		if p.Ref == "" {
			return nil, fmt.Errorf("%w: push without ref", forge.ErrMalformed)
		}
		if p.Deleted || forge.ZeroSHA(p.After) {
			return nil, fmt.Errorf("%w: %s deleted", forge.ErrIgnoredEvent, p.Ref)
		}
		if strings.HasPrefix(p.Ref, "refs/tags/") {
			return githubTag(ev, forge.ShortRef(p.Ref), p.After)
		}
		ev.Kind, ev.Action, ev.Ref, ev.Branch = forge.KindPush, forge.ActionPushed, p.Ref, forge.ShortRef(p.Ref)
		ev.Before, ev.After, ev.URL = p.Before, p.After, p.Compare
		for _, c := range p.Commits {
			ev.Commits = append(ev.Commits, forge.Commit{ID: c.ID, Message: c.Message, URL: c.URL,
				Author: forge.Person{Name: c.Author.Name, Username: c.Author.Username}, Time: webhook.ParseTime(c.Timestamp)})
		}
		forge.SortCommits(ev.Commits)
		ev.TotalCommits = len(ev.Commits)
		if n := len(ev.Commits); n > 0 {
			ev.Time = ev.Commits[n-1].Time
		}
		ev.Identity = forge.Identity("push", repo.FullName, p.Ref, p.After)
		return ev, nil
	case "pull_request":
		pr := p.PullRequest
		if pr == nil || pr.Number == 0 {
			return nil, fmt.Errorf("%w: pull_request without number", forge.ErrMalformed)
		}
		switch {
		case p.Action == "opened":
			ev.Action, ev.Time, ev.Actor = forge.ActionOpened, webhook.ParseTime(pr.CreatedAt), pr.User.person()
		case p.Action == "closed" && pr.Merged:
			ev.Action, ev.Time = forge.ActionMerged, webhook.ParseTime(pr.MergedAt)
			if pr.MergedBy != nil {
				ev.Actor = pr.MergedBy.person()
			}
		case p.Action == "closed":
			ev.Action, ev.Time = forge.ActionClosed, webhook.FirstTime(pr.ClosedAt, pr.UpdatedAt)
		case p.Action == "reopened":
			ev.Action, ev.Time = forge.ActionReopened, webhook.ParseTime(pr.UpdatedAt)
		default:
			return nil, fmt.Errorf("%w: pull_request %s (merged=%t)", forge.ErrIgnoredEvent, p.Action, pr.Merged)
		}
		ev.Kind, ev.Number, ev.Title, ev.Body, ev.BodyFormat = forge.KindMergeRequest, pr.Number, pr.Title, pr.Body, forge.FormatMarkdown
		ev.URL, ev.Branch, ev.SourceBranch = pr.HTMLURL, pr.Base.Ref, pr.Head.Ref
		for _, l := range pr.Labels {
			ev.Labels = append(ev.Labels, l.Name)
		}
		if ev.Action == forge.ActionOpened && forge.WrittenByFedforge(pr.Body) {
			return nil, fmt.Errorf("%w: pull request #%d written by Fedforge", forge.ErrIgnoredEvent, pr.Number)
		}
		ev.Identity = forge.ThreadIdentity("mr", repo.FullName, pr.Number, ev.Action, ev.Time)
		return ev, nil
	default: // issues
		is := p.Issue
		if is == nil || is.Number == 0 {
			return nil, fmt.Errorf("%w: issues without number", forge.ErrMalformed)
		}
		switch p.Action {
		case "opened":
			if forge.WrittenByFedforge(is.Body) {
				return nil, fmt.Errorf("%w: issue #%d written by Fedforge", forge.ErrIgnoredEvent, is.Number)
			}
			ev.Action, ev.Time, ev.Actor = forge.ActionOpened, webhook.ParseTime(is.CreatedAt), is.User.person()
		case "closed":
			ev.Action, ev.Time = forge.ActionClosed, webhook.FirstTime(is.ClosedAt, is.UpdatedAt)
		case "reopened":
			ev.Action, ev.Time = forge.ActionReopened, webhook.ParseTime(is.UpdatedAt)
		default:
			return nil, fmt.Errorf("%w: issue %s", forge.ErrIgnoredEvent, p.Action)
		}
		num := strconv.FormatInt(is.Number, 10)
		ev.Kind, ev.Number, ev.Title = forge.KindIssue, is.Number, is.Title
		ev.Body, ev.BodyFormat = is.Body, forge.FormatMarkdown
		ev.URL = cmp.Or(is.HTMLURL, webhook.JoinURL(repo.WebURL, "/issues/", num))
		for _, l := range is.Labels {
			ev.Labels = append(ev.Labels, l.Name)
		}
		ev.Identity = forge.ThreadIdentity("issue", repo.FullName, is.Number, ev.Action, ev.Time)
		return ev, nil
	}
}

// githubTag fills a Tag event from a create or a tag push; both map to one identity, so
// a repository that sends both hooks posts once.
func githubTag(ev *forge.Event, tag, sha string) (*forge.Event, error) {
	ev.Kind, ev.Action, ev.Version, ev.Ref, ev.After = forge.KindTag, forge.ActionCreated, tag, "refs/tags/"+tag, sha
	ev.URL = webhook.JoinURL(ev.Repository.WebURL, "/releases/tag/", tag)
	ev.Identity = forge.Identity("tag", ev.Repository.FullName, tag)
	return ev, nil
}
