package render

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// deepIndentedList nests 200 lists by indentation, one marker a line.
var deepIndentedList = func() string {
	var b strings.Builder
	for i := range 200 {
		b.WriteString(strings.Repeat("  ", i) + "- x\n")
	}
	return strings.TrimSpace(b.String())
}()

// TestMarkdown renders forge Markdown with goldmark and checks the exact HTML: what
// Mastodon keeps is kept, what it drops is written as something it keeps, and raw HTML
// or dangerous links never come through.
func TestMarkdown(t *testing.T) {
	tests := map[string]struct{ md, want string }{
		"emphasis and code": {"It **crashes** on `start`", "<p>It <strong>crashes</strong> on <code>start</code></p>"},
		"attribution line": {"*[fedforge\\-admin](<http://127.0.0.1:3000/admin>) offers [pull request \\#1](<http://127.0.0.1:3000/a/b/pulls/1>).*",
			`<p><em><a href="http://127.0.0.1:3000/admin">fedforge-admin</a> offers <a href="http://127.0.0.1:3000/a/b/pulls/1">pull request #1</a>.</em></p>`},
		"line breaks as the forge shows them": {"one\ntwo\n\nthree", "<p>one<br>two</p><p>three</p>"},
		"heading as a bold paragraph":         {"## Steps\ntext", "<p><strong>Steps</strong></p><p>text</p>"},
		"lists and task boxes":                {"- a\n- [ ] b\n- [x] c\n\n1. one\n2. two", "<ul><li>a</li><li>☐ b</li><li>☑ c</li></ul><ol><li>one</li><li>two</li></ol>"},
		"code block keeps its lines":          {"```go\nfunc main() {\n}\n```", "<pre><code>func main() {\n}</code></pre>"},
		"quote and strikethrough":             {"> quoted\n\n~~gone~~", "<blockquote><p>quoted</p></blockquote><p><del>gone</del></p>"},
		"bare URL linked":                     {"see https://example.org/x.", `<p>see <a href="https://example.org/x">https://example.org/x</a>.</p>`},
		"image as a link":                     {"![a *screenshot*](https://img.example/s.png)", `<p><a href="https://img.example/s.png">a screenshot</a></p>`},
		"image without alt":                   {"![](https://img.example/s.png)", `<p><a href="https://img.example/s.png">https://img.example/s.png</a></p>`},
		"table as rows":                       {"| a | b |\n|---|---|\n| 1 | 2 |", "<p><strong>a | b</strong></p><p>1 | 2</p>"},
		"thematic break dropped":              {"above\n\n---\n\nbelow", "<p>above</p><p>below</p>"},
		"script block left out":               {"<script>alert(1)</script>\n\nafter", "<p>after</p>"},
		"inline raw HTML left out":            {`a <b onclick="x()">b</b> <img src=x onerror=alert(1)> c`, "<p>a b  c</p>"},
		"javascript link keeps its text":      {"[click](javascript:alert(1)) and <javascript:alert(1)>", "<p>click and javascript:alert(1)</p>"},
		"javascript image":                    {"![x](javascript:alert(1))", "<p>x</p>"},
		"data and relative links dropped":     {"[d](data:text/html,x) [r](/a/b)", "<p>d r</p>"},
		"link title dropped":                  {`[t](https://e.example "title")`, `<p><a href="https://e.example">t</a></p>`},
		"html entities stay escaped":          {"a &lt;b&gt; & <c", "<p>a &lt;b&gt; &amp; &lt;c</p>"},
		"empty":                               {"  \r\n ", ""},
		"nested quotes and lists":             {"> - > a", "<blockquote><ul><li><blockquote><p>a</p></blockquote></li></ul></blockquote>"},
		"too deep shown as text":              {strings.Repeat(">", 40) + " *x*", "<p>" + strings.Repeat("&gt;", 40) + " *x*</p>"},
		"long blank line is not nesting":      {"*a*\n" + strings.Repeat(" ", 300) + "\n\nb", "<p><em>a</em></p><p>b</p>"},
		"lists nested by indentation":         {deepIndentedList, "<p>" + strings.Repeat("- x<br>", 199) + "- x</p>"},
		"CRLF":                                {"one\r\ntwo", "<p>one<br>two</p>"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Markdown(tc.md)
			if got != tc.want {
				t.Errorf("Markdown(%q)\n got %q\nwant %q", tc.md, got, tc.want)
			}
			if SanitizeHTML(got) != got {
				t.Errorf("not stable under the sanitiser: %q", SanitizeHTML(got))
			}
		})
	}
}

// TestMarkdownTruncates: an excerpt keeps the whole blocks that fit, reduces the first
// one that does not to text cut at a word, and never leaves a tag cut or open.
func TestMarkdownTruncates(t *testing.T) {
	long := strings.Repeat("word ", 40)
	tests := map[string]struct {
		md    string
		limit int
		want  string
	}{
		"fits":                 {"**a** b", 10, "<p><strong>a</strong> b</p>"},
		"second block cut":     {"**first** one\n\n*" + strings.TrimSpace(long) + "*", 40, "<p><strong>first</strong> one</p><p>word word word word word word…</p>"},
		"too little room left": {"a paragraph of thirty-five letters\n\n" + long, 40, "<p>a paragraph of thirty-five letters</p><p>…</p>"},
		"first block too long": {"- `" + long + "`", 20, "<p>word word word word…</p>"},
		"later blocks dropped": {"one\n\n" + long + "\n\nthree", 30, "<p>one</p><p>word word word word word…</p>"},
		"huge source cut":      {"ab\n\n" + strings.Repeat("<!-- x -->\n\n", 20) + "cd", 5, "<p>ab</p><p>…</p>"},
		"huge line cut":        {"**a** b\n\n" + strings.Repeat("c", 200), 10, "<p><strong>a</strong> b</p><p>…</p>"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := markdownHTML(tc.md, tc.limit)
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			checkExcerpt(t, got, tc.limit)
		})
	}
}

// TestMarkdownHostileNesting: deep nesting of quotes, lists, emphasis and brackets
// renders (goldmark is linear on these) and stays well formed.
func TestMarkdownHostileNesting(t *testing.T) {
	for name, md := range map[string]string{
		"quotes":      strings.Repeat(">", 10000) + " deep",
		"lists":       strings.Repeat("- ", 5000) + "deep",
		"emphasis":    strings.Repeat("*a ", 10000) + strings.Repeat("a* ", 10000),
		"brackets":    strings.Repeat("[", 20000) + "x" + strings.Repeat("](https://e.example)", 20000),
		"backticks":   strings.Repeat("`", 5000) + "x" + strings.Repeat("`", 4999),
		"nested html": strings.Repeat("<div>", 5000) + "<script>alert(1)</script>" + strings.Repeat("</div>", 5000),
	} {
		t.Run(name, func(t *testing.T) {
			got := Markdown(md)
			if strings.Contains(got, "<script") || strings.Contains(got, "<div") {
				t.Fatalf("raw HTML came through: %.200q", got)
			}
			checkExcerpt(t, markdownHTML(md, commentExcerptLimit), commentExcerptLimit)
		})
	}
}

// FuzzMarkdown: any Markdown renders to HTML the sanitiser keeps as it is, with every
// tag closed, within the excerpt limit.
func FuzzMarkdown(f *testing.F) {
	for _, s := range []string{"It **crashes** on `start`", "# h\n\n- [ ] a\n\n| a |\n|---|\n| b |\n\n![i](https://e.example/i.png)",
		"<script>x</script>[a](javascript:x)", "```\ncode\n```\n> q\n\n~~s~~ https://e.example/a?b=1&c=2", strings.Repeat("> - ", 50) + "x"} {
		f.Add(s, 40)
	}
	f.Fuzz(func(t *testing.T, md string, limit int) {
		if limit < 1 || limit > 5000 {
			return
		}
		checkExcerpt(t, markdownHTML(md, limit), limit)
		if full := Markdown(md); SanitizeHTML(full) != full {
			t.Fatalf("not stable under the sanitiser:\n%q\n%q", full, SanitizeHTML(full))
		}
	})
}

// checkExcerpt checks an excerpt is stable under the sanitiser, its text is within
// limit characters (and an ellipsis), and its tags are balanced.
func checkExcerpt(t *testing.T, got string, limit int) {
	t.Helper()
	if SanitizeHTML(got) != got {
		t.Fatalf("not stable under the sanitiser:\n%q\n%q", got, SanitizeHTML(got))
	}
	if n := utf8.RuneCountInString(strings.ReplaceAll(htmlText(got), "\n", "")); n > limit+1 {
		t.Fatalf("%d characters of text, limit %d: %.300q", n, limit, got)
	}
	var open []string
	z := html.NewTokenizer(strings.NewReader(got))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if len(open) != 0 {
				t.Fatalf("tags left open %v: %.300q", open, got)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if string(name) != "br" {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(open) == 0 || open[len(open)-1] != string(name) {
				t.Fatalf("</%s> closes %v: %.300q", name, open, got)
			}
			open = open[:len(open)-1]
		}
	}
}
