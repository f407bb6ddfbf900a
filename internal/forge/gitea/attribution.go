package gitea

import (
	"net/url"
	"strings"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
)

// KeyMarker starts the hidden line that carries a write's idempotency key in the body of
// what Fedforge writes, so that the forge-write queue (phase 2) can find an object whose
// answer it lost (a crash between the forge's answer and the queue's commit).
const KeyMarker = "<!-- fedforge:idempotency-key="

// Attributed returns the Markdown body Fedforge writes for a remote author: the text in
// Gitea's Markdown (plain text escaped, HTML reduced to the markup Mastodon keeps), a rule,
// a line crediting the author by handle with a link to their actor and one to the
// original object, and the key marker. Fedforge writes with its own token, so the forge
// shows the token's user as author: the credit line is how forge users see who wrote it.
// Every remote string is escaped: a display name cannot become a link or markup.
func Attributed(body string, format forge.Format, a forge.RemoteAuthor, objectID string, key forge.IdempotencyKey, verb string) string {
	var b strings.Builder
	switch format {
	case forge.FormatHTML:
		b.WriteString(render.SanitizeHTML(body))
	case forge.FormatMarkdown:
		b.WriteString(body)
	default:
		b.WriteString(escapeMarkdown(body))
	}
	b.WriteString("\n\n---\n\n*")
	b.WriteString(verb)
	b.WriteString(" on the Fediverse by ")
	who := a.Handle
	if who == "" {
		who = a.URL
	}
	if a.Name != "" && a.Name != a.Handle {
		who = a.Name + " (" + who + ")"
	}
	if who == "" {
		who = "an unnamed account"
	}
	b.WriteString(mdLink(who, a.URL))
	if safeURL(objectID) {
		b.WriteString(" · ")
		b.WriteString(mdLink("original", objectID))
	}
	b.WriteString("*")
	if key != "" {
		b.WriteString("\n\n")
		b.WriteString(KeyMarker)
		// "--" would end the comment early; keys are URLs, which rarely hold it.
		b.WriteString(strings.ReplaceAll(string(key), "--", "%2D%2D"))
		b.WriteString(" -->")
	}
	return b.String()
}

// mdLink is [text](u) with text escaped, or the escaped text alone when u is not a plain
// http(s) URL (no javascript:, no relative links into the forge).
func mdLink(text, u string) string {
	if !safeURL(u) {
		return escapeMarkdown(text)
	}
	return "[" + escapeMarkdown(text) + "](<" + strings.NewReplacer("<", "%3C", ">", "%3E", " ", "%20").Replace(u) + ">)"
}

// safeURL accepts absolute http(s) URLs with a host.
func safeURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" && !strings.ContainsAny(u, "\n\r")
}

// escapeMarkdown backslash-escapes every ASCII punctuation character, which CommonMark
// (Gitea's goldmark) then shows literally, so plain text never turns into markup,
// mentions (@) or issue references (#).
func escapeMarkdown(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
