// Package gitea is Fedforge's adapter for Gitea and Forgejo, which share their webhook
// payloads (Forgejo is a Gitea fork and still sends Gitea's headers beside its own): it
// verifies the HMAC signature and reads the payloads into forge.Events. Its write side,
// Writer (writer.go), implements forge.Writer for both forges with the Gitea SDK.
package gitea

import (
	"cmp"
	"fmt"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/webhook"
	"net/http"
	"slices"
	"strconv"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// Gitea and Forgejo webhook headers (Gitea services/webhook/deliver.go; Forgejo sends
// both its own and Gitea's headers, so that receivers written for Gitea keep working).
const (
	headerGiteaSignature   = "X-Gitea-Signature"
	headerGiteaEvent       = "X-Gitea-Event"
	headerGiteaDelivery    = "X-Gitea-Delivery"
	headerForgejoSignature = "X-Forgejo-Signature"
	headerForgejoEvent     = "X-Forgejo-Event"
	headerForgejoDelivery  = "X-Forgejo-Delivery"
	// headerGiteaHookScope says where the hook is installed: "repository",
	// "organization", "user" or "system" (Gitea 1.27 services/webhook/deliver.go; seen
	// on a real organization hook).
	headerGiteaHookScope   = "X-Gitea-Hook-Installation-Target-Type"
	headerForgejoHookScope = "X-Forgejo-Hook-Installation-Target-Type"
)

type gtUser struct {
	Login    string `json:"login"`
	Username string `json:"username"`
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
}

func (u gtUser) person() forge.Person {
	name := u.Login
	if name == "" {
		name = u.Username
	}
	return forge.Person{Name: u.FullName, Username: name, URL: u.HTMLURL}
}

type gtRepo struct {
	Name      string  `json:"name"`
	FullName  string  `json:"full_name"`
	HTMLURL   string  `json:"html_url"`
	CloneURL  string  `json:"clone_url"`
	Fork      bool    `json:"fork"`
	Parent    *gtRepo `json:"parent"`
	CreatedAt string  `json:"created_at"`
	// Topics, Private, Internal, Description and URL (the API address) matter to
	// organization-level hooks (repository.go).
	Topics      []string `json:"topics"`
	Private     bool     `json:"private"`
	Internal    bool     `json:"internal"`
	Description string   `json:"description"`
	URL         string   `json:"url"`
}

func (r gtRepo) repo() forge.Repository {
	return forge.Repository{Name: r.Name, FullName: r.FullName, WebURL: r.HTMLURL, CloneURL: r.CloneURL}
}

// subject is the repository an event happened in, with what organization-level hooks
// need besides (repository.go); other repositories of a payload (a fork) keep repo().
func (r gtRepo) subject() forge.Repository {
	repo := r.repo()
	repo.Private, repo.Description, repo.APIURL, repo.Created = r.Private || r.Internal, r.Description, r.URL, r.CreatedAt
	return repo
}

type gtCommit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	URL       string `json:"url"`
	Timestamp string `json:"timestamp"`
	Author    gtUser `json:"author"`
}

type gtLabel struct {
	Name string `json:"name"`
}

type gtPayload struct {
	Action string `json:"action"`
	// push
	Ref          string     `json:"ref"`
	Before       string     `json:"before"`
	After        string     `json:"after"`
	CompareURL   string     `json:"compare_url"`
	Commits      []gtCommit `json:"commits"`
	TotalCommits int        `json:"total_commits"`
	Pusher       gtUser     `json:"pusher"`
	// create
	RefType string `json:"ref_type"`
	SHA     string `json:"sha"`
	// release
	Release *struct {
		TagName     string `json:"tag_name"`
		Name        string `json:"name"`
		Body        string `json:"body"`
		HTMLURL     string `json:"html_url"`
		Draft       bool   `json:"draft"`
		Prerelease  bool   `json:"prerelease"`
		CreatedAt   string `json:"created_at"`
		PublishedAt string `json:"published_at"`
		Author      gtUser `json:"author"`
	} `json:"release"`
	// pull_request and issues
	PullRequest *struct {
		Number     int64     `json:"number"`
		Title      string    `json:"title"`
		Body       string    `json:"body"`
		HTMLURL    string    `json:"html_url"`
		ClosedAt   string    `json:"closed_at"`
		UpdatedAt  string    `json:"updated_at"`
		Merged     bool      `json:"merged"`
		MergedAt   string    `json:"merged_at"`
		MergeSHA   string    `json:"merge_commit_sha"`
		CreatedAt  string    `json:"created_at"`
		User       gtUser    `json:"user"`
		MergedBy   *gtUser   `json:"merged_by"`
		Labels     []gtLabel `json:"labels"`
		BaseBranch string    `json:"base_branch"`
		HeadBranch string    `json:"head_branch"`
		Base       struct {
			Ref string `json:"ref"`
		} `json:"base"`
		Head struct {
			Ref string `json:"ref"`
		} `json:"head"`
	} `json:"pull_request"`
	Issue *struct {
		Number    int64     `json:"number"`
		Title     string    `json:"title"`
		Body      string    `json:"body"`
		HTMLURL   string    `json:"html_url"`
		CreatedAt string    `json:"created_at"`
		UpdatedAt string    `json:"updated_at"`
		ClosedAt  string    `json:"closed_at"`
		User      gtUser    `json:"user"`
		Labels    []gtLabel `json:"labels"`
		// PullRequest is set when the issue is a pull request (issue_comment on a PR).
		PullRequest *struct{} `json:"pull_request"`
	} `json:"issue"`
	// issue_comment
	Comment *struct {
		ID        int64  `json:"id"`
		Body      string `json:"body"`
		HTMLURL   string `json:"html_url"`
		User      gtUser `json:"user"`
		CreatedAt string `json:"created_at"`
		UpdatedAt string `json:"updated_at"`
	} `json:"comment"`
	IsPull bool `json:"is_pull"`
	// fork: Gitea 1.27 sends the upstream as "forkee" and the new fork as "repository"
	// (services/webhook/notifier.go), the reverse of GitHub; giteaFork sorts them out.
	Forkee     *gtRepo `json:"forkee"`
	Repository gtRepo  `json:"repository"`
	Sender     gtUser  `json:"sender"`
}

// Gitea reads Gitea; Forgejo reads Forgejo. They are two adapters because the two
// forges sign and name their headers differently; the payloads they share are read by
// one parser. Neither holds state, so the zero values are ready.
type (
	Gitea   struct{}
	Forgejo struct{}
)

var (
	_ forge.Reader = Gitea{}
	_ forge.Reader = Forgejo{}
)

// Type implements forge.Reader.
func (Gitea) Type() fedv1.SourceType { return fedv1.SourceGitea }

// Type implements forge.Reader.
func (Forgejo) Type() fedv1.SourceType { return fedv1.SourceForgejo }

// ParseWebhook verifies a Gitea webhook (hex HMAC-SHA256 of the body in
// X-Gitea-Signature) and parses release, create (tag), push, pull_request, issues,
// issue_comment (on issues and on pull requests), fork and repository (created). Gitea 1.27 has no star
// webhook (modules/webhook/type.go lists none), so a star never arrives from Gitea.
func (Gitea) ParseWebhook(h http.Header, body, secret []byte) (*forge.Event, error) {
	if !webhook.VerifyHMAC(h.Get(headerGiteaSignature), body, secret) {
		return nil, fmt.Errorf("%w: %s", forge.ErrUnauthorized, headerGiteaSignature)
	}
	ev, err := parseGiteaEvent(h.Get(headerGiteaEvent), body)
	if err != nil {
		return nil, err
	}
	ev.Forge = fedv1.SourceGitea
	ev.DeliveryID = h.Get(headerGiteaDelivery)
	ev.HookScope = h.Get(headerGiteaHookScope)
	return ev, nil
}

// ParseWebhook verifies a Forgejo webhook. Forgejo signs in X-Forgejo-Signature and, for
// compatibility, also in X-Gitea-Signature; either is accepted (the same HMAC of the
// same body), and the event type is read from X-Forgejo-Event or X-Gitea-Event.
func (Forgejo) ParseWebhook(h http.Header, body, secret []byte) (*forge.Event, error) {
	sig := h.Get(headerForgejoSignature)
	if sig == "" {
		sig = h.Get(headerGiteaSignature)
	}
	if !webhook.VerifyHMAC(sig, body, secret) {
		return nil, fmt.Errorf("%w: %s", forge.ErrUnauthorized, headerForgejoSignature)
	}
	event := h.Get(headerForgejoEvent)
	if event == "" {
		event = h.Get(headerGiteaEvent)
	}
	ev, err := parseGiteaEvent(event, body)
	if err != nil {
		return nil, err
	}
	ev.Forge = fedv1.SourceForgejo
	ev.DeliveryID = h.Get(headerForgejoDelivery)
	if ev.DeliveryID == "" {
		ev.DeliveryID = h.Get(headerGiteaDelivery)
	}
	ev.HookScope = cmp.Or(h.Get(headerForgejoHookScope), h.Get(headerGiteaHookScope))
	return ev, nil
}

// parseGiteaEvent reads the payloads Gitea and Forgejo share (modules/structs/hook.go).
func parseGiteaEvent(event string, body []byte) (*forge.Event, error) {
	switch event {
	case "release", "create", "push", "pull_request", "issues", "issue_comment", "fork", "repository":
	default:
		return nil, fmt.Errorf("%w: Gitea/Forgejo %q", forge.ErrIgnoredEvent, event)
	}
	var p gtPayload
	if err := webhook.DecodePayload(body, &p); err != nil {
		return nil, err
	}
	repo := p.Repository.subject()
	if repo.FullName == "" {
		return nil, fmt.Errorf("%w: %s without repository", forge.ErrMalformed, event)
	}
	ev := &forge.Event{Repository: repo, Actor: p.Sender.person(), Topics: p.Repository.Topics}
	switch event {
	case "issue_comment":
		return giteaComment(ev, &p)
	case "fork":
		return giteaFork(ev, &p)
	case "repository":
		return giteaRepository(ev, &p)
	case "release":
		r := p.Release
		if r == nil || r.TagName == "" {
			return nil, fmt.Errorf("%w: release without tag", forge.ErrMalformed)
		}
		if p.Action != "published" || r.Draft {
			return nil, fmt.Errorf("%w: release %s", forge.ErrIgnoredEvent, p.Action)
		}
		ev.Kind, ev.Action = forge.KindRelease, forge.ActionPublished
		ev.Title, ev.Version, ev.URL, ev.Body, ev.BodyFormat = r.Name, r.TagName, r.HTMLURL, r.Body, forge.FormatMarkdown
		ev.Ref, ev.Prerelease, ev.Time = "refs/tags/"+r.TagName, r.Prerelease, webhook.FirstTime(r.PublishedAt, r.CreatedAt)
		if r.Author.Login != "" || r.Author.Username != "" {
			ev.Actor = r.Author.person()
		}
		if ev.URL == "" {
			ev.URL = webhook.JoinURL(repo.WebURL, "/releases/tag/", r.TagName)
		}
		ev.Identity = forge.Identity("release", repo.FullName, r.TagName)
		return ev, nil
	case "create":
		if p.RefType != "tag" {
			return nil, fmt.Errorf("%w: create %s", forge.ErrIgnoredEvent, p.RefType)
		}
		return giteaTag(ev, forge.ShortRef(p.Ref), p.SHA)
	case "push":
		if p.Ref == "" {
			return nil, fmt.Errorf("%w: push without ref", forge.ErrMalformed)
		}
		if forge.ZeroSHA(p.After) {
			return nil, fmt.Errorf("%w: %s deleted", forge.ErrIgnoredEvent, p.Ref)
		}
		if strings.HasPrefix(p.Ref, "refs/tags/") {
			return giteaTag(ev, forge.ShortRef(p.Ref), p.After)
		}
		if p.Pusher.Login != "" || p.Pusher.Username != "" {
			ev.Actor = p.Pusher.person()
		}
		ev.Kind, ev.Action, ev.Ref, ev.Branch = forge.KindPush, forge.ActionPushed, p.Ref, forge.ShortRef(p.Ref)
		ev.Before, ev.After, ev.TotalCommits = p.Before, p.After, p.TotalCommits
		// Gitea lists a push's commits newest first (git rev-list order), and dates them
		// to the second, so commits made within one second tie: reading them backwards
		// keeps the stable sort below oldest first (seen with a real Gitea 1.27.3; the
		// recorded payload had one commit).
		for _, c := range slices.Backward(p.Commits) {
			ev.Commits = append(ev.Commits, forge.Commit{ID: c.ID, Message: c.Message, URL: c.URL,
				Author: forge.Person{Name: c.Author.FullName, Username: c.Author.Username}, Time: webhook.ParseTime(c.Timestamp)})
		}
		if ev.TotalCommits < len(ev.Commits) {
			ev.TotalCommits = len(ev.Commits)
		}
		forge.SortCommits(ev.Commits)
		if n := len(ev.Commits); n > 0 {
			ev.Time = ev.Commits[n-1].Time
		}
		ev.URL = p.CompareURL
		if ev.URL == "" || forge.ZeroSHA(p.Before) {
			ev.URL = webhook.JoinURL(repo.WebURL, "/src/branch/", ev.Branch)
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
			ev.Action, ev.Time = forge.ActionOpened, webhook.ParseTime(pr.CreatedAt)
			ev.Actor = pr.User.person()
		case p.Action == "closed" && pr.Merged:
			ev.Action, ev.Time = forge.ActionMerged, webhook.ParseTime(pr.MergedAt)
			if isCommitHash(pr.MergeSHA) {
				ev.MergeCommit = pr.MergeSHA
			}
			if pr.MergedBy != nil {
				ev.Actor = pr.MergedBy.person()
			}
		case p.Action == "closed":
			ev.Action, ev.Time = forge.ActionClosed, webhook.FirstTime(pr.ClosedAt, pr.UpdatedAt)
		case p.Action == "reopened":
			ev.Action, ev.Time = forge.ActionReopened, webhook.ParseTime(pr.UpdatedAt)
		case p.Action == "label_updated":
			// Gitea sends a label added or removed as pull_request (event
			// pull_request_label) with this action; Labels are the labels after it.
			ev.Action, ev.Time = forge.ActionLabeled, webhook.ParseTime(pr.UpdatedAt)
		default:
			return nil, fmt.Errorf("%w: pull_request %s", forge.ErrIgnoredEvent, p.Action)
		}
		ev.Kind, ev.Number, ev.Title, ev.Body, ev.BodyFormat = forge.KindMergeRequest, pr.Number, pr.Title, pr.Body, forge.FormatMarkdown
		ev.URL = pr.HTMLURL
		ev.Branch, ev.SourceBranch = cmp.Or(pr.Base.Ref, pr.BaseBranch), cmp.Or(pr.Head.Ref, pr.HeadBranch)
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

// giteaTag fills a Tag event; create and push both announce a new tag, and both map to
// the same identity, so that receiving the two hooks posts once.
func giteaTag(ev *forge.Event, tag, sha string) (*forge.Event, error) {
	if tag == "" {
		return nil, fmt.Errorf("%w: tag without name", forge.ErrMalformed)
	}
	ev.Kind, ev.Action, ev.Version, ev.Ref, ev.After = forge.KindTag, forge.ActionCreated, tag, "refs/tags/"+tag, sha
	ev.URL = webhook.JoinURL(ev.Repository.WebURL, "/src/tag/", tag)
	ev.Identity = forge.Identity("tag", ev.Repository.FullName, tag)
	return ev, nil
}

// isCommitHash accepts a full SHA-1 or SHA-256 object name in lower-case hex (a merge
// commit from the payload, passed on to the Fediverse only in that form).
func isCommitHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
