package server

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/store"
)

// Tickets from mentions (docs/forgefed.md): a Mastodon user files a bug by mentioning a
// Repository actor ("@repo@host the build fails on arm64"). When the actor takes tickets
// and spec.tickets.fromMentions is on, the Note opens an issue through the forge-write
// queue, keyed by the Note's id, as an Offer{Ticket} would; the author is answered with
// a reply Note linking the new issue (Mastodon shows no Accept), and replies to either
// Note become comments (replies.go, threadOf). A Note that is itself a reply in a ticket
// thread is a comment, never a new issue.

// maxMentionTitle caps the title taken from a Note's first sentence, in characters: a
// title, not the whole post (the post is the body).
const maxMentionTitle = 100

// mentionTicket queues the issue of a Create{Note} that mentions a local actor taking
// tickets from mentions. Refusals (no text, too large) answer the author with a reply
// Note saying why; the Note is still filed for its addressees as any Create is.
func (f *federation) mentionTicket(ctx context.Context, in *inbound) error {
	act := in.act
	note := commentNote(act)
	if note == nil {
		return nil
	}
	la, err := f.mentionedTracker(ctx, act, note, in.recipient)
	if err != nil || la == nil {
		return err
	}
	if _, _, _, inThread, err := f.threadOf(ctx, note); err != nil || inThread {
		return err // a reply in a ticket thread is a comment (replyToTicket)
	}
	if err := checkNoteAuthor(act, note); err != nil {
		return err
	}
	actorID := act.Actor.ID()
	author, inbox, err := f.remoteAuthor(ctx, la, actorID)
	if err != nil {
		return err
	}
	op := forgewrite.Op{Kind: forgewrite.KindIssue,
		Origin: forgewrite.Origin{ActivityID: note.ID, ActorID: actorID, Inbox: inbox, ObjectID: note.ID, Mention: true}}
	title := mentionTitle(note)
	body, format := noteBody(note)
	op.Ticket = &forge.Ticket{Title: title, Body: body, Format: format, Author: author, ObjectID: note.ID}
	switch {
	case title == "":
		return f.tickets.mentionRefusedNow(ctx, la, op, "the post has no text besides the mention to make an issue of")
	case len(body) > maxTicketBody:
		return f.tickets.mentionRefusedNow(ctx, la, op, "the post is larger than 64 KiB")
	}
	return f.tickets.queue(ctx, la.urls.ID, op)
}

// mentionedTracker is the first local actor (in tag order) that a Note both mentions (a
// Mention tag whose href is the actor) and is addressed to (to, cc, or its personal
// inbox), and that takes tickets from mentions; nil when there is none. A Note mentioning
// two such repositories opens one issue, in the first.
func (f *federation) mentionedTracker(ctx context.Context, act, note *activitypub.Object, recipient *localActor) (*localActor, error) {
	prefix := "" // read at the first Mention: most Notes have none (issue 17: a cache read per POST)
	for _, ref := range note.Tag {
		tag := ref.Object
		if tag == nil || !tag.Type.Has("Mention") {
			continue
		}
		if prefix == "" {
			base, _, err := f.actors.baseURL(ctx)
			if err != nil {
				return nil, err
			}
			prefix = strings.TrimRight(base, "/") + "/"
		}
		if !strings.HasPrefix(tag.Href, prefix) {
			continue
		}
		la, err := f.actors.byIRI(ctx, tag.Href)
		if err != nil {
			continue // not one of our actors
		}
		id := la.urls.ID
		addressed := (recipient != nil && recipient.urls.ID == id) ||
			act.To.Contains(id) || act.Cc.Contains(id) || note.To.Contains(id) || note.Cc.Contains(id)
		if !addressed {
			continue
		}
		if ok, _ := takesTickets(la.obj); ok && la.obj.Spec.Tickets != nil && la.obj.Spec.Tickets.FromMentions {
			return la, nil
		}
	}
	return nil, nil
}

// mentionTitle is a Note's first sentence of text: its content reduced to text, without
// the mentions it starts with, its first non-empty line up to the end of the first
// sentence, capped at maxMentionTitle characters.
func mentionTitle(note *activitypub.Object) string {
	text := render.HTMLText(note.Content)
	if strings.TrimSpace(note.Content) == "" && note.Source != nil {
		text = note.Source.Content
	}
	text = strings.TrimLeftFunc(stripLeadingMentions(text), func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune(":,;-–—", r) })
	line, _, _ := strings.Cut(text, "\n")
	line = strings.Join(strings.Fields(line), " ")
	for i, r := range line {
		if r != '.' && r != '!' && r != '?' && r != '。' {
			continue
		}
		next := line[i+utf8.RuneLen(r):]
		if next == "" || next[0] == ' ' || r == '。' {
			if r == '.' { // an issue title ends without a full stop
				line = line[:i]
			} else {
				line = line[:i+utf8.RuneLen(r)]
			}
			break
		}
	}
	return capTitle(strings.TrimSpace(line), maxMentionTitle)
}

// stripLeadingMentions drops the @user and @user@host words a post starts with (Mastodon
// puts the mentions of a reply or a bug report first).
func stripLeadingMentions(s string) string {
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if !strings.HasPrefix(s, "@") {
			return s
		}
		end := strings.IndexFunc(s, unicode.IsSpace)
		if end < 0 {
			return ""
		}
		s = s[end:]
	}
}

// capTitle cuts s to at most limit characters at the last space in its second half,
// marking the cut with an ellipsis.
func capTitle(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)[:limit-1]
	cut := len(r)
	for i := len(r) - 1; i > limit/2; i-- {
		if unicode.IsSpace(r[i]) {
			cut = i
			break
		}
	}
	return strings.TrimRightFunc(string(r[:cut]), unicode.IsSpace) + "…"
}

// mentionDone is what follows the forge's answer to an issue asked for by a mention: the
// ticket and thread records, the author as a participant, and the reply Note with the
// issue's link. Idempotent like done (every record keeps its first; the reply's id
// derives from the Note's).
func (t *ticketing) mentionDone(ctx context.Context, la *localActor, op forgewrite.Op, ref store.ForgeRef) error {
	f := t.f
	ticketID := la.urls.Ticket(ref.Number)
	noteID := op.Origin.ObjectID
	if err := f.store.PutTicket(ctx, store.TicketRecord{ID: ticketID, ActorID: la.urls.ID, Number: ref.Number,
		AuthorID: op.Origin.ActorID, OfferID: op.Origin.ActivityID, ObjectID: noteID}); err != nil {
		return err
	}
	reply := mentionReplyID(la, noteID)
	if err := f.store.PutMentionTicket(ctx, store.MentionTicket{NoteID: noteID, TicketID: ticketID, ReplyID: reply.note,
		AuthorID: op.Origin.ActorID}); err != nil {
		return err
	}
	if err := t.participate(ctx, ticketID, op.Origin.ActorID, op.Origin.Inbox); err != nil {
		return err
	}
	t.forget(la.urls.ID, ref.Number)
	issue := html.EscapeString(la.obj.Spec.Forge.Project) + "#" + fmt.Sprint(ref.Number)
	if validHTTPURL(ref.URL) {
		issue = `<a href="` + html.EscapeString(ref.URL) + `">` + issue + `</a>`
	}
	text := "<p>" + mentionOf(op) + " Thank you: this is now issue " + issue + ", “" + html.EscapeString(op.Ticket.Title) +
		"”.</p><p>Replies in this thread become comments on the issue. Ticket: <a href=\"" + html.EscapeString(ticketID) + "\">" +
		html.EscapeString(ticketID) + "</a></p>"
	note := t.mentionNote(la, op, reply, text)
	note.ASContext = activitypub.IRIRef(ticketID)
	return t.publishMentionReply(ctx, la, op, note)
}

// mentionRefused answers the author of a mention whose issue the forge would not write.
func (t *ticketing) mentionRefused(ctx context.Context, la *localActor, op forgewrite.Op, reason string) {
	if err := t.mentionRefusedNow(ctx, la, op, reason); err != nil {
		t.f.log.Info("answering a refused mention failed", "note", op.Origin.ObjectID, "error", err.Error())
	}
}

// mentionRefusedNow answers the author of a mention with a reply Note saying why no
// issue was opened.
func (t *ticketing) mentionRefusedNow(ctx context.Context, la *localActor, op forgewrite.Op, reason string) error {
	t.f.log.Info("refusing an issue asked for by a mention", "actor", la.obj.Name, "note", op.Origin.ObjectID,
		"from", op.Origin.ActorID, "reason", reason)
	if op.Origin.Inbox == "" {
		return nil
	}
	text := "<p>" + mentionOf(op) + " No issue was opened: " + html.EscapeString(reason) + ".</p>"
	return t.publishMentionReply(ctx, la, op, t.mentionNote(la, op, mentionReplyID(la, op.Origin.ObjectID), text))
}

// replyIDs are the ids of the reply to a mention: the Note and its Create.
type replyIDs struct{ note, create string }

// mentionReplyID derives the reply's ids from the mentioning Note's: one answer per Note
// however often it arrives, a success or a refusal.
func mentionReplyID(la *localActor, noteID string) replyIDs {
	key := "mention-reply|" + noteID
	return replyIDs{note: render.ObjectID(la.urls.ID, key), create: render.ActivityID(la.urls.ID, key)}
}

// mentionOf is the Mastodon-style mention of the author that starts a reply (an h-card
// link, which Mastodon turns into the author's profile link).
func mentionOf(op forgewrite.Op) string {
	a := op.Ticket.Author
	handle := a.Handle
	if handle == "" {
		handle = op.Origin.ActorID
	}
	href := a.URL
	if !validHTTPURL(href) {
		href = op.Origin.ActorID
	}
	return `<span class="h-card"><a href="` + html.EscapeString(href) + `" class="u-url mention">` + html.EscapeString(handle) + `</a></span>`
}

// mentionNote builds the reply Note: inReplyTo the author's Note, mentioning them (a
// Mention tag, as Mastodon's notifications need) and addressed to them alone.
func (t *ticketing) mentionNote(la *localActor, op forgewrite.Op, ids replyIDs, content string) *activitypub.Object {
	mention := &activitypub.Object{Type: activitypub.Types{"Mention"}, Href: op.Origin.ActorID}
	if h := op.Ticket.Author.Handle; h != "" {
		mention.Name = h
	}
	return &activitypub.Object{
		Context: activitypub.ActivityContext(), ID: ids.note, Type: activitypub.Types{activitypub.TypeNote},
		AttributedTo: activitypub.IRIRefs(la.urls.ID), InReplyTo: activitypub.IRIRef(op.Origin.ObjectID),
		Content: content, Published: activitypub.Time{Time: t.f.now().UTC()},
		To: activitypub.IRIRefs(op.Origin.ActorID), Tag: activitypub.Refs{activitypub.ObjectRef(mention)},
	}
}

// publishMentionReply wraps the reply in a Create and publishes it to the author's inbox,
// storing the Note so that it dereferences at its id (a Direct object: only the author's
// signed fetch reads it).
func (t *ticketing) publishMentionReply(ctx context.Context, la *localActor, op forgewrite.Op, note *activitypub.Object) error {
	act := activitypub.NewActivity(activitypub.TypeCreate, mentionReplyID(la, op.Origin.ObjectID).create, la.urls.ID,
		activitypub.Embed(note), note.To, nil)
	act.Published = note.Published
	rawAct, err := json.Marshal(act)
	if err != nil {
		return fmt.Errorf("encoding the reply to %s: %w", op.Origin.ObjectID, err)
	}
	rawNote, err := json.Marshal(note)
	if err != nil {
		return fmt.Errorf("encoding the reply to %s: %w", op.Origin.ObjectID, err)
	}
	at := note.Published.Time
	a := store.Activity{ID: act.ID, ActorID: la.urls.ID, Type: activitypub.TypeCreate, ObjectID: note.ID,
		Visibility: store.Direct, Published: at, Raw: rawAct,
		Object: &store.Object{ID: note.ID, ActorID: la.urls.ID, Type: activitypub.TypeNote, Visibility: store.Direct,
			Published: at, Updated: at, Raw: rawNote}}
	if err := t.f.pub.Publish(ctx, a, []Recipient{{Inbox: op.Origin.Inbox}}); err != nil {
		return fmt.Errorf("publishing the reply to %s: %w", op.Origin.ObjectID, err)
	}
	return nil
}
