// Package gitlab is Fedforge's GitLab adapter: it verifies GitLab webhooks
// (X-Gitlab-Token) and reads their payloads into forge.Events. Phase 2 adds the write
// side (forge.Writer) here.
package gitlab

import (
	"fmt"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/webhook"
	"net/http"
	"strconv"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// GitLab webhook headers (doc/user/project/integrations/webhooks.md and webhook_events.md).
const (
	headerGitLabToken = "X-Gitlab-Token"
	headerGitLabEvent = "X-Gitlab-Event"
	headerGitLabUUID  = "X-Gitlab-Event-UUID"
)

type glProject struct {
	Name              string `json:"name"`
	WebURL            string `json:"web_url"`
	PathWithNamespace string `json:"path_with_namespace"`
	GitHTTPURL        string `json:"git_http_url"`
}

func (p glProject) repo() forge.Repository {
	return forge.Repository{Name: p.Name, FullName: p.PathWithNamespace, WebURL: p.WebURL, CloneURL: p.GitHTTPURL}
}

type glCommit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	URL       string `json:"url"`
	Author    struct {
		Name string `json:"name"`
	} `json:"author"`
}

func (c glCommit) commit() forge.Commit {
	return forge.Commit{ID: c.ID, Message: c.Message, URL: c.URL, Author: forge.Person{Name: c.Author.Name}, Time: webhook.ParseTime(c.Timestamp)}
}

type glUser struct {
	Name     string `json:"name"`
	Username string `json:"username"`
}

type glLabel struct {
	Title string `json:"title"`
}

type glPush struct {
	ObjectKind   string     `json:"object_kind"`
	Before       string     `json:"before"`
	After        string     `json:"after"`
	Ref          string     `json:"ref"`
	UserName     string     `json:"user_name"`
	UserUsername string     `json:"user_username"`
	Project      glProject  `json:"project"`
	Commits      []glCommit `json:"commits"`
	TotalCommits int        `json:"total_commits_count"`
}

type glRelease struct {
	ObjectKind  string    `json:"object_kind"`
	Action      string    `json:"action"`
	Name        string    `json:"name"`
	Tag         string    `json:"tag"`
	Description string    `json:"description"`
	URL         string    `json:"url"`
	CreatedAt   string    `json:"created_at"`
	ReleasedAt  string    `json:"released_at"`
	Project     glProject `json:"project"`
	Commit      glCommit  `json:"commit"`
}

type glObjectHook struct {
	ObjectKind       string    `json:"object_kind"`
	User             glUser    `json:"user"`
	Project          glProject `json:"project"`
	ObjectAttributes struct {
		IID          int64     `json:"iid"`
		Title        string    `json:"title"`
		Description  string    `json:"description"`
		URL          string    `json:"url"`
		Action       string    `json:"action"`
		Confidential bool      `json:"confidential"`
		TargetBranch string    `json:"target_branch"`
		SourceBranch string    `json:"source_branch"`
		CreatedAt    string    `json:"created_at"`
		UpdatedAt    string    `json:"updated_at"`
		ClosedAt     string    `json:"closed_at"`
		Labels       []glLabel `json:"labels"`
	} `json:"object_attributes"`
}

// Adapter reads GitLab; it holds no state, so the zero value is ready.
type Adapter struct{}

var _ forge.Reader = Adapter{}

// Type implements forge.Reader.
func (Adapter) Type() fedv1.SourceType { return fedv1.SourceGitLab }

// ParseWebhook verifies a GitLab webhook (X-Gitlab-Token, compared in constant time with
// the secret) and parses Release, Tag Push, Push, Merge Request, Issue and Note hooks.
// GitLab has no fork or star webhook.
func (Adapter) ParseWebhook(h http.Header, body, secret []byte) (*forge.Event, error) {
	if !webhook.VerifyToken(h.Get(headerGitLabToken), secret) {
		return nil, fmt.Errorf("%w: %s", forge.ErrUnauthorized, headerGitLabToken)
	}
	ev, err := parseGitLabEvent(h.Get(headerGitLabEvent), body)
	if err != nil {
		return nil, err
	}
	ev.Forge = fedv1.SourceGitLab
	ev.DeliveryID = h.Get(headerGitLabUUID)
	return ev, nil
}

func parseGitLabEvent(event string, body []byte) (*forge.Event, error) {
	switch event {
	case "Release Hook":
		var p glRelease
		if err := webhook.DecodePayload(body, &p); err != nil {
			return nil, err
		}
		if p.Action != "create" {
			return nil, fmt.Errorf("%w: release %s", forge.ErrIgnoredEvent, p.Action)
		}
		if p.Tag == "" || p.Project.PathWithNamespace == "" {
			return nil, fmt.Errorf("%w: release without tag or project", forge.ErrMalformed)
		}
		ev := &forge.Event{
			Kind: forge.KindRelease, Action: forge.ActionPublished, Repository: p.Project.repo(),
			Title: p.Name, Version: p.Tag, URL: p.URL, Body: p.Description, BodyFormat: forge.FormatMarkdown,
			Ref: "refs/tags/" + p.Tag, After: p.Commit.ID, Time: webhook.FirstTime(p.ReleasedAt, p.CreatedAt),
			Identity: forge.Identity("release", p.Project.PathWithNamespace, p.Tag),
		}
		if p.Commit.ID != "" {
			ev.Commits = []forge.Commit{p.Commit.commit()}
		}
		return ev, nil
	case "Tag Push Hook", "Push Hook":
		var p glPush
		if err := webhook.DecodePayload(body, &p); err != nil {
			return nil, err
		}
		if p.Ref == "" || p.Project.PathWithNamespace == "" {
			return nil, fmt.Errorf("%w: push without ref or project", forge.ErrMalformed)
		}
		if forge.ZeroSHA(p.After) {
			return nil, fmt.Errorf("%w: %s deleted", forge.ErrIgnoredEvent, p.Ref)
		}
		ev := &forge.Event{
			Repository: p.Project.repo(), Actor: forge.Person{Name: p.UserName, Username: p.UserUsername},
			Ref: p.Ref, Before: p.Before, After: p.After, TotalCommits: p.TotalCommits,
		}
		for _, c := range p.Commits {
			ev.Commits = append(ev.Commits, c.commit())
		}
		forge.SortCommits(ev.Commits)
		if event == "Tag Push Hook" || strings.HasPrefix(p.Ref, "refs/tags/") {
			ev.Kind, ev.Action, ev.Version = forge.KindTag, forge.ActionCreated, forge.ShortRef(p.Ref)
			ev.URL = webhook.JoinURL(p.Project.WebURL, "/-/tags/", ev.Version)
			ev.Identity = forge.Identity("tag", p.Project.PathWithNamespace, ev.Version)
			return ev, nil
		}
		ev.Kind, ev.Action, ev.Branch = forge.KindPush, forge.ActionPushed, forge.ShortRef(p.Ref)
		if forge.ZeroSHA(p.Before) || p.Before == "" {
			ev.URL = webhook.JoinURL(p.Project.WebURL, "/-/commits/", ev.Branch)
		} else {
			ev.URL = webhook.JoinURL(p.Project.WebURL, "/-/compare/", p.Before+"..."+p.After)
		}
		if n := len(ev.Commits); n > 0 {
			ev.Time = ev.Commits[n-1].Time
		}
		ev.Identity = forge.Identity("push", p.Project.PathWithNamespace, p.Ref, p.After)
		return ev, nil
	case "Merge Request Hook", "Issue Hook":
		var p glObjectHook
		if err := webhook.DecodePayload(body, &p); err != nil {
			return nil, err
		}
		a := p.ObjectAttributes
		if a.IID == 0 || p.Project.PathWithNamespace == "" {
			return nil, fmt.Errorf("%w: %s without iid or project", forge.ErrMalformed, event)
		}
		ev := &forge.Event{
			Repository: p.Project.repo(), Actor: forge.Person{Name: p.User.Name, Username: p.User.Username},
			Title: a.Title, URL: a.URL, Body: a.Description, BodyFormat: forge.FormatMarkdown, Number: a.IID,
			Branch: a.TargetBranch, SourceBranch: a.SourceBranch,
		}
		for _, l := range a.Labels {
			ev.Labels = append(ev.Labels, l.Title)
		}
		num := strconv.FormatInt(a.IID, 10)
		kind, noun := forge.KindMergeRequest, "mr"
		if event == "Issue Hook" {
			// Confidential issues arrive as "Confidential Issue Hook"; the flag is checked
			// too, so a secret issue (or its closing) never reaches the Fediverse.
			if p.ObjectKind != "issue" || a.Confidential {
				return nil, fmt.Errorf("%w: issue %s", forge.ErrIgnoredEvent, a.Action)
			}
			kind, noun = forge.KindIssue, "issue"
		}
		switch a.Action {
		case "open":
			if forge.WrittenByFedforge(a.Description) {
				return nil, fmt.Errorf("%w: %s !%s written by Fedforge", forge.ErrIgnoredEvent, noun, num)
			}
			ev.Action, ev.Time = forge.ActionOpened, webhook.ParseTime(a.CreatedAt)
		case "merge":
			if kind == forge.KindIssue {
				return nil, fmt.Errorf("%w: issue %s", forge.ErrIgnoredEvent, a.Action)
			}
			ev.Action, ev.Time = forge.ActionMerged, webhook.ParseTime(a.UpdatedAt)
		case "close":
			ev.Action, ev.Time = forge.ActionClosed, webhook.FirstTime(a.ClosedAt, a.UpdatedAt)
		case "reopen":
			ev.Action, ev.Time = forge.ActionReopened, webhook.ParseTime(a.UpdatedAt)
		default:
			return nil, fmt.Errorf("%w: %s %s", forge.ErrIgnoredEvent, noun, a.Action)
		}
		ev.Kind = kind
		ev.Identity = forge.ThreadIdentity(noun, p.Project.PathWithNamespace, a.IID, ev.Action, ev.Time)
		return ev, nil
	case "Note Hook":
		// Notes on confidential issues arrive as "Confidential Note Hook" (ignored below,
		// like any other event) with event_type confidential_note, also checked.
		return parseGitLabNote(body)
	}
	return nil, fmt.Errorf("%w: GitLab %q", forge.ErrIgnoredEvent, event)
}
