package server

import (
	"testing"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
)

// TestTicketFields: the title comes from name, else from summary reduced to one line of
// text; the body from a Markdown source, else HTML content, else plain text; and the
// Ticket served for an offered issue drops the credit line Fedforge appended.
func TestTicketFields(t *testing.T) {
	for _, tc := range []struct {
		o     activitypub.Object
		title string
	}{
		{activitypub.Object{Name: "  Crash\non   start ", Summary: "ignored"}, "Crash on start"},
		{activitypub.Object{Summary: "<p>Crash &amp; <b>burn</b></p>"}, "Crash & burn"},
		{activitypub.Object{Summary: "<script>alert(1)</script>"}, ""},
	} {
		if got := ticketTitle(&tc.o); got != tc.title {
			t.Errorf("ticketTitle(%+v) = %q, want %q", tc.o, got, tc.title)
		}
	}
	for _, tc := range []struct {
		o      activitypub.Object
		body   string
		format forge.Format
	}{
		{activitypub.Object{Content: "<p>x</p>", Source: &activitypub.Content{Content: "*x*", MediaType: "text/markdown; charset=utf-8"}}, "*x*", forge.FormatMarkdown},
		{activitypub.Object{Content: "*x*", MediaType: "text/markdown"}, "*x*", forge.FormatMarkdown},
		{activitypub.Object{Content: "<p>x</p>", Source: &activitypub.Content{Content: "x", MediaType: "text/x-org"}}, "<p>x</p>", forge.FormatHTML},
		{activitypub.Object{Source: &activitypub.Content{Content: "#1 @bob"}}, "#1 @bob", forge.FormatPlain},
	} {
		if body, format := noteBody(&tc.o); body != tc.body || format != tc.format {
			t.Errorf("noteBody(%+v) = %q %s, want %q %s", tc.o, body, format, tc.body, tc.format)
		}
	}
	written := gitea.Attributed("It **crashes**.\n\n---\n\nnot ours", forge.FormatMarkdown, forge.RemoteAuthor{Handle: "@a@p", URL: "https://p/a"}, "https://p/t", "https://p/o", "Opened")
	if got := withoutAttribution(written); got != "It **crashes**.\n\n---\n\nnot ours" {
		t.Errorf("withoutAttribution = %q", got)
	}
}
