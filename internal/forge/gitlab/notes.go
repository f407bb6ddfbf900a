package gitlab

import (
	"fmt"
	"net/url"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/webhook"
)

// glNote is a Note Hook: a comment, in object_attributes, on the issue or merge request
// named beside it (doc/user/project/integrations/webhook_events.md, "Comment events").
type glNote struct {
	ObjectKind       string    `json:"object_kind"`
	EventType        string    `json:"event_type"`
	User             glUser    `json:"user"`
	Project          glProject `json:"project"`
	ObjectAttributes struct {
		ID           int64  `json:"id"`
		Note         string `json:"note"`
		NoteableType string `json:"noteable_type"`
		System       bool   `json:"system"`
		Action       string `json:"action"`
		URL          string `json:"url"`
		CreatedAt    string `json:"created_at"`
		UpdatedAt    string `json:"updated_at"`
	} `json:"object_attributes"`
	Issue *struct {
		IID          int64  `json:"iid"`
		Title        string `json:"title"`
		Confidential bool   `json:"confidential"`
	} `json:"issue"`
	MergeRequest *struct {
		IID   int64  `json:"iid"`
		Title string `json:"title"`
	} `json:"merge_request"`
}

// parseGitLabNote reads a comment on an issue or a merge request; comments on commits
// and snippets, system notes ("changed the description") and notes on confidential
// issues are ErrIgnoredEvent, as is a note Fedforge wrote (forge.WrittenByFedforge).
// GitLab sends create and update (since 16.11); it has no webhook for a deleted note.
func parseGitLabNote(body []byte) (*forge.Event, error) {
	var p glNote
	if err := webhook.DecodePayload(body, &p); err != nil {
		return nil, err
	}
	a := p.ObjectAttributes
	if a.ID == 0 || p.Project.PathWithNamespace == "" {
		return nil, fmt.Errorf("%w: note without id or project", forge.ErrMalformed)
	}
	if p.ObjectKind != "note" || p.EventType == "confidential_note" || a.System {
		return nil, fmt.Errorf("%w: note %s (%s)", forge.ErrIgnoredEvent, p.EventType, a.NoteableType)
	}
	ev := &forge.Event{Kind: forge.KindComment, Repository: p.Project.repo(), CommentID: a.ID,
		Body: a.Note, BodyFormat: forge.FormatMarkdown, URL: a.URL,
		Actor: forge.Person{Name: p.User.Name, Username: p.User.Username, URL: profileURL(p.Project.WebURL, p.User.Username)}}
	switch {
	case a.NoteableType == "Issue" && p.Issue != nil && p.Issue.IID != 0:
		if p.Issue.Confidential {
			return nil, fmt.Errorf("%w: note on a confidential issue", forge.ErrIgnoredEvent)
		}
		ev.Number, ev.Title = p.Issue.IID, p.Issue.Title
	case a.NoteableType == "MergeRequest" && p.MergeRequest != nil && p.MergeRequest.IID != 0:
		ev.Number, ev.Title, ev.OnMergeRequest = p.MergeRequest.IID, p.MergeRequest.Title, true
	case a.NoteableType == "Issue" || a.NoteableType == "MergeRequest":
		return nil, fmt.Errorf("%w: note on %s without its iid", forge.ErrMalformed, a.NoteableType)
	default:
		return nil, fmt.Errorf("%w: note on a %s", forge.ErrIgnoredEvent, a.NoteableType)
	}
	switch a.Action {
	case "create", "": // before 16.11 there was no action, and only creations were sent
		ev.Action, ev.Time = forge.ActionCreated, webhook.ParseTime(a.CreatedAt)
	case "update":
		ev.Action, ev.Time = forge.ActionEdited, webhook.ParseTime(a.UpdatedAt)
	default:
		return nil, fmt.Errorf("%w: note %s", forge.ErrIgnoredEvent, a.Action)
	}
	if forge.WrittenByFedforge(a.Note) {
		return nil, fmt.Errorf("%w: note %d written by Fedforge", forge.ErrIgnoredEvent, a.ID)
	}
	ev.Identity = forge.CommentIdentity(p.Project.PathWithNamespace, ev.OnMergeRequest, ev.Number, a.ID, ev.Action, ev.Time, a.Note)
	return ev, nil
}

// profileURL is a GitLab user's profile page, <instance>/<username>: payloads name the
// user but do not link them.
func profileURL(projectURL, username string) string {
	u, err := url.Parse(projectURL)
	if err != nil || u.Host == "" || username == "" {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/" + username}).String()
}
