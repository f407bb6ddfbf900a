package render

import (
	"strings"
	"testing"

	"github.com/fedforge/fedforge/internal/forge"
)

func TestExcerptTruncates(t *testing.T) {
	long := strings.Repeat("word ", 200)
	tests := map[string]struct {
		body   string
		format forge.Format
	}{
		"plain":    {long, forge.FormatPlain},
		"markdown": {"# Title\n\n" + long, forge.FormatMarkdown},
		"html":     {"<p>" + long + "</p><p>second</p>", forge.FormatHTML},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := excerptHTML(tc.body, tc.format, excerptLimit)
			text := htmlText(out)
			if n := len([]rune(text)); n > excerptLimit+1 || n < excerptLimit/2 {
				t.Errorf("excerpt of %d characters:\n%s", n, out)
			}
			if !strings.HasSuffix(text, "…") {
				t.Errorf("truncation not marked: %q", text[len(text)-20:])
			}
			if SanitizeHTML(out) != out {
				t.Errorf("excerpt is not clean HTML: %s", out)
			}
		})
	}
}

func TestHashtagName(t *testing.T) {
	tests := map[string]string{
		"release-webhook-example": "ReleaseWebhookExample",
		"Hello-World":             "HelloWorld",
		"feed-rs":                 "FeedRs",
		"gitlab_test":             "Gitlab_test",
		"démo app":                "DémoApp",
		"2048":                    "",
		"---":                     "",
		"v2.0":                    "V20",
	}
	for in, want := range tests {
		if got := hashtagName(in); got != want {
			t.Errorf("hashtagName(%q) = %q, want %q", in, got, want)
		}
	}
}
