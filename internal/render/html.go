package render

import (
	"github.com/fedforge/fedforge/internal/forge"
	"html"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
)

// contentPolicy is the HTML allowed in the content we publish: what Mastodon keeps when
// it sanitises remote posts (Sanitize::Config::MASTODON_STRICT: paragraphs, line breaks,
// links, inline emphasis, code, quotes and lists), so that what we send is what its
// users see, and nothing a forge or a feed sends can carry script or tracking markup.
var contentPolicy = func() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "span", "del", "s", "pre", "blockquote", "code", "b", "strong", "u", "i", "em", "ul", "ol", "li")
	p.AllowAttrs("href").OnElements("a")
	p.AllowURLSchemes("http", "https")
	p.RequireParseableURLs(true)
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^(mention|hashtag)( (mention|hashtag))*$`)).OnElements("a")
	p.AllowAttrs("rel").Matching(regexp.MustCompile(`^tag$`)).OnElements("a")
	return p
}()

// textPolicy strips every tag, for measuring and excerpting HTML as text.
var textPolicy = bluemonday.StrictPolicy()

// SanitizeHTML returns s reduced to the markup Mastodon keeps (see contentPolicy). The
// client-to-server outbox and feeds pass untrusted HTML through it.
func SanitizeHTML(s string) string { return contentPolicy.Sanitize(s) }

// esc escapes text for HTML content and attribute values.
func esc(s string) string { return html.EscapeString(s) }

// link writes an anchor, or only the escaped text when there is no URL to point at.
func link(href, text string) string {
	href = CleanURL(href)
	if href == "" {
		return esc(text)
	}
	return `<a href="` + esc(href) + `">` + esc(text) + `</a>`
}

// CleanURL returns raw in the normal form the sanitiser (and Mastodon's) would give
// it, or "" when it is not an absolute http(s) URL with a host: javascript: links,
// "http://" alone, URLs with spaces or credentials never reach published documents.
// The normal form matters: a URL the sanitiser would rewrite would make what Mastodon
// shows differ from what we sent (found by FuzzGiteaWebhook and FuzzGitLabWebhook).
func CleanURL(raw string) string {
	if raw == "" || strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return ""
	}
	s := u.String()
	if again, err := url.Parse(s); err != nil || again.String() != s {
		return ""
	}
	return s
}

// IsHTTPURL reports whether s is an absolute http(s) URL we may publish.
func IsHTTPURL(s string) bool { return CleanURL(s) != "" }

// urlRE finds http(s) URLs in plain text, for turning them into links.
var urlRE = regexp.MustCompile(`https?://[^\s<>"'()\[\]]+[^\s<>"'()\[\].,;:!?]`)

// linkify escapes plain text and turns the URLs in it into links.
func linkify(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range urlRE.FindAllStringIndex(s, -1) {
		b.WriteString(esc(s[last:m[0]]))
		b.WriteString(link(s[m[0]:m[1]], s[m[0]:m[1]]))
		last = m[1]
	}
	b.WriteString(esc(s[last:]))
	return b.String()
}

// excerptLimit is how many characters of release notes or descriptions a post carries;
// Mastodon's own posts stop at 500, and the title and link lines need room too.
const excerptLimit = 400

// excerptHTML turns a body into at most limit characters of paragraphs. Plain text is
// escaped and its URLs linked; Markdown is rendered (see markdownHTML); HTML is
// sanitised, and when it is too long it is reduced to text first so that truncation
// cannot cut a tag in half.
func excerptHTML(body string, format forge.Format, limit int) string {
	body = strings.TrimSpace(strings.ReplaceAll(body, "\r\n", "\n"))
	if body == "" {
		return ""
	}
	switch format {
	case forge.FormatHTML:
		clean := strings.TrimSpace(SanitizeHTML(body))
		if utf8.RuneCountInString(htmlText(clean)) <= limit {
			return collapseSpace(clean)
		}
		return textToHTML(htmlText(body), limit)
	case forge.FormatMarkdown:
		return markdownHTML(body, limit)
	}
	return textToHTML(body, limit)
}

// blockEnd matches the HTML that ends a line or a paragraph, kept as newlines when HTML
// is reduced to text.
var blockEnd = regexp.MustCompile(`(?i)<br\s*/?>|</p>|</li>|</h[1-6]>|</blockquote>|</pre>`)

// htmlText reduces HTML to text, keeping line breaks where blocks ended.
// HTMLText is the text of an HTML fragment (a feed entry's title), without markup.
func HTMLText(s string) string { return htmlText(s) }

func htmlText(s string) string {
	s = blockEnd.ReplaceAllString(s, "\n")
	s = html.UnescapeString(textPolicy.Sanitize(s))
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// collapseSpace removes the indentation and line breaks feeds put between tags:
// Mastodon's web client shows status content with white-space: pre-wrap, so each of
// them would become a visible blank line. A line break inside text becomes a space.
func collapseSpace(s string) string {
	lines := strings.Split(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if b.Len() > 0 && !strings.HasSuffix(b.String(), ">") && !strings.HasPrefix(l, "<") {
			b.WriteByte(' ')
		}
		b.WriteString(l)
	}
	return b.String()
}

// paragraphBreak separates paragraphs of plain text.
var paragraphBreak = regexp.MustCompile(`\n\s*\n`)

// textToHTML writes text as escaped, linkified paragraphs (blank lines separate them,
// single newlines become <br>), truncated at a word boundary to limit characters.
func textToHTML(s string, limit int) string {
	s = truncateText(strings.TrimSpace(s), limit)
	var b strings.Builder
	for _, para := range paragraphBreak.Split(s, -1) {
		para = strings.TrimSpace(para)
		if para == "" {
			continue
		}
		lines := strings.Split(para, "\n")
		for i, l := range lines {
			lines[i] = linkify(strings.TrimSpace(l))
		}
		b.WriteString("<p>" + strings.Join(lines, "<br>") + "</p>")
	}
	return b.String()
}

// truncateText cuts s to at most limit characters, at the last space when there is one
// in the second half, and marks the cut with an ellipsis.
func truncateText(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)[:limit]
	cut := len(r)
	for i := len(r) - 1; i > limit/2; i-- {
		if unicode.IsSpace(r[i]) {
			cut = i
			break
		}
	}
	return strings.TrimRightFunc(string(r[:cut]), unicode.IsSpace) + "…"
}

// hashtagName turns a project name into a hashtag Mastodon recognises: letters, digits
// and underscores only, separators removed and the following letter capitalised
// ("release-webhook-example" -> "ReleaseWebhookExample"). It returns "" when nothing
// usable is left, or when only digits are (Mastodon refuses numeric hashtags).
func hashtagName(s string) string {
	var b strings.Builder
	upper, letter := true, false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r):
			if upper {
				r = unicode.ToUpper(r)
			}
			b.WriteRune(r)
			upper, letter = false, true
		case unicode.IsDigit(r) || r == '_':
			b.WriteRune(r)
			upper = false
		default:
			upper = true
		}
	}
	if !letter {
		return ""
	}
	return b.String()
}

// hashtagLink writes a hashtag the way Mastodon writes its own, so that its web client
// links it to the local tag timeline.
func hashtagLink(href, name string) string {
	if href = CleanURL(href); href == "" {
		return "#" + esc(name)
	}
	return `<a href="` + esc(href) + `" class="mention hashtag" rel="tag">#<span>` + esc(name) + `</span></a>`
}
