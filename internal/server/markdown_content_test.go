package server

import (
	"testing"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/urls"
)

// TestOfferTicketRendersMarkdown: the Offer's Ticket shows the pull request's Markdown
// body rendered (as Gitea shows it), keeps the Markdown as its source, and carries none
// of the body's raw HTML.
func TestOfferTicketRendersMarkdown(t *testing.T) {
	actor := &fedv1.FederatedActor{Spec: fedv1.FederatedActorSpec{PreferredUsername: "demo"}}
	la := &localActor{obj: actor, urls: urls.ForActor("https://fed.example", "demo")}
	body := "It **crashes** on `start`.\n\n<script>alert(1)</script>\n\n- [x] tested"
	ev := &forge.Event{Number: 7, Title: "Fix start", Body: body, URL: "http://127.0.0.1:3000/a/b/pulls/7", SourceBranch: "fix",
		Actor:      forge.Person{Username: "alice", URL: "http://127.0.0.1:3000/alice"},
		Repository: forge.Repository{FullName: "a/b", WebURL: "http://127.0.0.1:3000/a/b"}}
	ticket := pullRequestOffer(la, ev, "https://up.example/actors/b", "https://fed.example/offers/1", time.Unix(0, 0)).Object.Object
	want := `<p><a href="http://127.0.0.1:3000/alice">alice</a> offers <a href="http://127.0.0.1:3000/a/b/pulls/7">pull request #7</a> of ` +
		`<a href="http://127.0.0.1:3000/a/b">a/b</a> from branch <code>fix</code>.</p>` +
		`<p>It <strong>crashes</strong> on <code>start</code>.</p><ul><li>☑ tested</li></ul>`
	if ticket.Content != want {
		t.Errorf("content\n got %q\nwant %q", ticket.Content, want)
	}
	if ticket.Source == nil || ticket.Source.MediaType != "text/markdown" || len(ticket.Source.Content) < len(body) ||
		ticket.Source.Content[len(ticket.Source.Content)-len(body):] != body {
		t.Errorf("source %+v, want the Markdown body after the credit line", ticket.Source)
	}
}
