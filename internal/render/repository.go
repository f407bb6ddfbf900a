package render

import (
	"slices"
	"strings"

	"github.com/fedforge/fedforge/internal/forge"
)

// repositoryContent is the Note of a repository created (forge.KindRepository), as an
// organization's or a topic's followers see it: "alice created acme/rocket in #Space",
// or, for a repository announced because a later event first showed the topic
// (forge.ActionTopicSeen), "acme/rocket is now in #Space". Names link to their pages on
// the forge; the topics the source selects are hashtags in the sentence, the
// repository's other topics and its name follow as hashtags, as Mastodon writes them.
func (r *renderer) repositoryContent() string {
	ev := r.ev
	var b strings.Builder
	b.WriteString("<p>")
	if ev.Action == forge.ActionTopicSeen {
		b.WriteString(r.repoLink() + " is now in")
	} else {
		if who := ev.Actor.Display(); who != "" {
			if IsHTTPURL(ev.Actor.URL) {
				b.WriteString(link(ev.Actor.URL, who))
			} else {
				b.WriteString(esc(who))
			}
			b.WriteString(" created " + r.repoLink())
		} else {
			b.WriteString("New repository " + r.repoLink())
		}
		if len(r.inlineTags()) > 0 {
			b.WriteString(" in")
		}
	}
	for i, name := range r.inlineTags() {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(" " + hashtagLink(r.tagHref(name), name))
	}
	b.WriteString("</p>")
	if d := strings.TrimSpace(ev.Repository.Description); d != "" {
		b.WriteString(textToHTML(d, excerptLimit))
	}
	b.WriteString(r.hashtagParagraph())
	return b.String()
}

// inlineTags are the hashtags of the topics, among the repository's, that the source
// selects (Target.Topics): what a topic actor's post is about, written in its sentence.
func (r *renderer) inlineTags() []string {
	if r.ev.Kind != forge.KindRepository {
		return nil
	}
	var out []string
	for _, topic := range r.ev.Topics {
		if !slices.ContainsFunc(r.t.Topics, func(w string) bool { return strings.EqualFold(w, topic) }) {
			continue
		}
		if n := hashtagName(topic); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// topicTags are the hashtags of all the repository's topics, for a repository created
// (other events do not name topics: a push is not news about a topic).
func (r *renderer) topicTags() []string {
	if r.ev.Kind != forge.KindRepository {
		return nil
	}
	var out []string
	for _, topic := range r.ev.Topics {
		if n := hashtagName(topic); n != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, n) }) {
			out = append(out, n)
		}
	}
	return out
}
