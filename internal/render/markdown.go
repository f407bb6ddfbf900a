package render

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	grenderer "github.com/yuin/goldmark/renderer"
	ghtml "github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// markdown renders forge Markdown the way Gitea and GitHub show an issue or comment:
// CommonMark with the GFM extensions (bare URLs as links, ~~strikethrough~~, tables,
// task lists), and a line break where the author broke the line. Raw HTML in the source
// is left out by goldmark (it is not rendered with WithUnsafe), and what goldmark writes
// still goes through contentPolicy. Elements Mastodon drops are written as ones it keeps
// (see mastodonRenderer).
var markdown = goldmark.New(
	goldmark.WithExtensions(extension.Linkify, extension.Strikethrough, extension.Table, extension.TaskList),
	goldmark.WithRendererOptions(
		ghtml.WithHardWraps(),
		grenderer.WithNodeRenderers(util.Prioritized(mastodonRenderer{}, 100)),
	),
)

// Markdown renders a forge body written in Markdown (an issue's or a pull request's
// description) as the HTML a Ticket's content holds, in full: paragraphs, emphasis,
// code, quotes, lists and links, reduced to the markup Mastodon keeps.
func Markdown(body string) string { return markdownHTML(body, 0) }

// minCutBlock is the fewest characters worth showing of a block cut as text; with less
// room left an excerpt ends with "…" alone.
const minCutBlock = 20

// markdownHTML renders body and, when limit > 0 and its text is longer, keeps the
// top-level blocks that fit in limit characters. Truncation works on whole rendered
// blocks, so it never cuts a tag or leaves one open: the block that does not fit is
// reduced to text and cut at a word (as excerptHTML does for HTML), and the blocks
// after it are dropped. A body nested too deep is shown as text (deeplyNested), and an
// excerpt parses only the source it can show (cutSource).
func markdownHTML(body string, limit int) string {
	body = strings.TrimSpace(strings.ReplaceAll(body, "\r\n", "\n"))
	if body == "" {
		return ""
	}
	if deeplyNested(body) {
		if limit <= 0 {
			limit = len(body)
		}
		return textToHTML(body, limit)
	}
	body, cut := cutSource(body, limit)
	src := []byte(body)
	doc := markdown.Parser().Parse(text.NewReader(src))
	var out strings.Builder
	used := 0
	for n := doc.FirstChild(); n != nil; n = n.NextSibling() {
		block := renderBlock(src, n)
		if block == "" {
			continue
		}
		chars := utf8.RuneCountInString(htmlText(block))
		if limit <= 0 || used+chars <= limit {
			out.WriteString(block)
			used += chars
			continue
		}
		if rest := limit - used; rest >= minCutBlock || out.Len() == 0 {
			out.WriteString(textToHTML(htmlText(block), max(rest, 1)))
		} else {
			out.WriteString("<p>…</p>")
		}
		return out.String()
	}
	if cut {
		out.WriteString("<p>…</p>")
	}
	return out.String()
}

// sourcePerCharacter is how many bytes of Markdown an excerpt of limit characters
// parses at most: markup and link targets take room the text does not show.
const sourcePerCharacter = 16

// cutSource shortens the Markdown of an excerpt to what it can show, so that a huge
// comment costs no more than its excerpt: at the last blank line (a block boundary) in
// the second half of limit*sourcePerCharacter bytes, else at the last line break there,
// else at that many bytes. A block cut open is closed by the end of the document, a cut
// inline shows its markup as text. It reports whether it cut.
func cutSource(body string, limit int) (string, bool) {
	most := limit * sourcePerCharacter
	if limit <= 0 || len(body) <= most {
		return body, false
	}
	head := body[:most]
	for _, sep := range []string{"\n\n", "\n"} {
		if i := strings.LastIndex(head, sep); i > most/2 {
			return head[:i], true
		}
	}
	for most > 0 && !utf8.RuneStart(body[most]) {
		most--
	}
	return body[:most], true
}

// maxNesting and maxIndent bound how deep the containers (quotes and lists) of a line
// may go. goldmark's block parser is quadratic in the nesting depth (a comment of 10000
// ">" takes half a second, a Ticket is rendered on every fetch), and nobody writes such
// Markdown but to hurt: a body that goes deeper is shown as text.
const (
	maxNesting = 32
	maxIndent  = 256
)

// deeplyNested reports whether a line of body opens more than maxNesting containers, or
// opens one and is indented by more than maxIndent bytes before its text (lists nest by
// indentation too). A line of spaces alone, or an indented code line, is not nested.
func deeplyNested(body string) bool {
	for line := range strings.SplitSeq(body, "\n") {
		depth, i := 0, 0
	prefix:
		for i < len(line) {
			switch c := line[i]; {
			case c == ' ' || c == '\t':
				i++
			case c == '>':
				depth, i = depth+1, i+1
			case (c == '-' || c == '*' || c == '+') && i+1 < len(line) && (line[i+1] == ' ' || line[i+1] == '\t'):
				depth, i = depth+1, i+2
			case c >= '0' && c <= '9':
				j := i
				for j < len(line) && line[j] >= '0' && line[j] <= '9' {
					j++
				}
				if j+1 >= len(line) || (line[j] != '.' && line[j] != ')') || (line[j+1] != ' ' && line[j+1] != '\t') {
					break prefix
				}
				depth, i = depth+1, j+2
			default:
				break prefix
			}
			if depth > maxNesting || (depth > 0 && i > maxIndent) {
				return true
			}
		}
	}
	return false
}

// renderBlock renders one top-level block, sanitises it and removes the newlines
// goldmark writes between tags: Mastodon's web client shows content with white-space:
// pre-wrap, so each would become a visible blank line. Newlines inside <pre> stay.
func renderBlock(src []byte, n ast.Node) string {
	var buf bytes.Buffer
	if err := markdown.Renderer().Render(&buf, src, n); err != nil {
		return ""
	}
	return withoutNewlines(strings.TrimSpace(SanitizeHTML(buf.String())))
}

// withoutNewlines drops the newlines of sanitised HTML outside <pre> blocks, and the
// last newline of a code block (goldmark ends each line of code with one).
func withoutNewlines(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "<pre>")
		if i < 0 {
			b.WriteString(strings.ReplaceAll(s, "\n", ""))
			return b.String()
		}
		b.WriteString(strings.ReplaceAll(s[:i], "\n", ""))
		s = s[i:]
		j := strings.Index(s, "</pre>")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		pre := strings.Replace(s[:j], "\n</code>", "</code>", 1)
		b.WriteString(pre + "</pre>")
		s = s[j+len("</pre>"):]
	}
}

// mastodonRenderer writes the Markdown elements Mastodon's sanitiser would drop, or
// flatten into run-on text, as elements it keeps: a heading as a bold paragraph, an
// image as a link to it (its alt text as the link text), a table as one paragraph per
// row with cells separated by " | ", a task-list box as ☐ or ☑, a thematic break as
// nothing (the paragraphs around it stay apart).
type mastodonRenderer struct{}

// RegisterFuncs implements goldmark's renderer.NodeRenderer; its priority is above goldmark's own.
func (mastodonRenderer) RegisterFuncs(reg grenderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindHeading, func(w util.BufWriter, _ []byte, _ ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			_, _ = w.WriteString("<p><strong>")
		} else {
			_, _ = w.WriteString("</strong></p>\n")
		}
		return ast.WalkContinue, nil
	})
	reg.Register(ast.KindImage, renderImage)
	reg.Register(ast.KindThematicBreak, func(util.BufWriter, []byte, ast.Node, bool) (ast.WalkStatus, error) {
		return ast.WalkContinue, nil
	})
	reg.Register(east.KindTable, func(util.BufWriter, []byte, ast.Node, bool) (ast.WalkStatus, error) {
		return ast.WalkContinue, nil
	})
	row := func(w util.BufWriter, _ []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		_, header := n.(*east.TableHeader)
		switch {
		case entering && header:
			_, _ = w.WriteString("<p><strong>")
		case entering:
			_, _ = w.WriteString("<p>")
		case header:
			_, _ = w.WriteString("</strong></p>\n")
		default:
			_, _ = w.WriteString("</p>\n")
		}
		return ast.WalkContinue, nil
	}
	reg.Register(east.KindTableHeader, row)
	reg.Register(east.KindTableRow, row)
	reg.Register(east.KindTableCell, func(w util.BufWriter, _ []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering && n.PreviousSibling() != nil {
			_, _ = w.WriteString(" | ")
		}
		return ast.WalkContinue, nil
	})
	reg.Register(east.KindTaskCheckBox, func(w util.BufWriter, _ []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			box := "☐ "
			if n.(*east.TaskCheckBox).IsChecked {
				box = "☑ "
			}
			_, _ = w.WriteString(box)
		}
		return ast.WalkContinue, nil
	})
}

// renderImage writes an image as a link to it, its alt text as the link's text (the
// URL when there is none); an image whose URL we may not publish leaves only its text.
func renderImage(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	img := n.(*ast.Image)
	href := CleanURL(string(img.Destination))
	alt := strings.TrimSpace(plainText(src, img))
	if alt == "" {
		alt = href
	}
	if href == "" {
		_, _ = w.WriteString(esc(alt))
	} else {
		_, _ = w.WriteString(`<a href="` + esc(href) + `">` + esc(alt) + `</a>`)
	}
	return ast.WalkSkipChildren, nil
}

// plainText collects the text of n's inline descendants (an image's alt text).
func plainText(src []byte, n ast.Node) string {
	var b strings.Builder
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch t := c.(type) {
		case *ast.Text:
			b.Write(t.Segment.Value(src))
			if t.SoftLineBreak() || t.HardLineBreak() {
				b.WriteByte(' ')
			}
		case *ast.String:
			b.Write(t.Value)
		case *ast.AutoLink:
			b.Write(t.URL(src))
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}
