package server

import (
	"strings"
	"testing"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// TestMentionTitle: the title of an issue opened by a mention is the first sentence of
// the post's text, without the mentions it starts with, capped.
func TestMentionTitle(t *testing.T) {
	mastodon := func(text string) string {
		return `<p><span class="h-card" translate="no"><a href="https://h/@repo" class="u-url mention">@<span>repo</span></a></span> ` + text + `</p>`
	}
	tests := map[string]struct {
		note *activitypub.Object
		want string
	}{
		"first sentence, without the full stop":  {&activitypub.Object{Content: mastodon("The build fails on arm64. It stops at the linker.")}, "The build fails on arm64"},
		"a question keeps its mark":              {&activitypub.Object{Content: mastodon("Why is the CLI so slow? Try it.")}, "Why is the CLI so slow?"},
		"first line only":                        {&activitypub.Object{Content: mastodon("Crash on start<br>stack trace below")}, "Crash on start"},
		"a version number is not a sentence end": {&activitypub.Object{Content: mastodon("Broken since v1.2.3 on macOS")}, "Broken since v1.2.3 on macOS"},
		"several leading mentions and a colon":   {&activitypub.Object{Content: `<p>@repo@h.example @bob: typo in README</p>`}, "typo in README"},
		"the mention alone leaves nothing":       {&activitypub.Object{Content: mastodon("")}, ""},
		"plain source when there is no content":  {&activitypub.Object{Source: &activitypub.Content{Content: "@repo@h docs are stale\nmore"}}, "docs are stale"},
		"capped at a word with an ellipsis": {&activitypub.Object{Content: mastodon(strings.Repeat("word ", 40))},
			strings.TrimSpace(strings.Repeat("word ", 19)) + "…"},
		"markup is text": {&activitypub.Object{Content: mastodon("<b>Bold</b> &amp; <i>brave</i>")}, "Bold & brave"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := mentionTitle(tc.note); got != tc.want {
				t.Errorf("mentionTitle = %q, want %q", got, tc.want)
			}
		})
	}
}
