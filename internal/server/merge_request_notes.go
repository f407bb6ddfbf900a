package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/store"
)

// The discussion of a pull request offered upstream, inbound (issue 14, fork side,
// docs/merge-requests.md step 3): a Note in reply to the upstream's merge-request Ticket
// (or to a Note written under it here) becomes a comment on the offered pull request,
// crediting its author; Update and Delete of that Note edit and delete the comment, as
// replies.go does for our own Tickets. Only the host that holds the Ticket speaks for
// its discussion: a Note about it from anywhere else is refused (403) and nothing is
// written.

// offeredByThread finds the offered pull request whose upstream Ticket is the thread a
// Note replies to (inReplyTo or context), directly or through a Note written under it.
func (f *federation) offeredByThread(ctx context.Context, note *activitypub.Object) (store.OfferedMergeRequest, *localActor, bool, error) {
	for _, parent := range []string{note.InReplyTo.ID(), note.ASContext.ID()} {
		if parent == "" {
			continue
		}
		ticket := parent
		if c, err := f.store.TicketCommentByNote(ctx, parent); err == nil {
			ticket = c.TicketID
		} else if !errors.Is(err, store.ErrNotFound) {
			return store.OfferedMergeRequest{}, nil, false, err
		}
		m, err := f.store.OfferedMergeRequestByTicket(ctx, ticket)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return m, nil, false, err
		}
		la, err := f.actors.byIRI(ctx, m.ActorID)
		if errors.Is(err, errNotLocal) {
			return m, nil, false, nil
		} else if err != nil {
			return m, nil, false, err
		}
		return m, la, true, nil
	}
	return store.OfferedMergeRequest{}, nil, false, nil
}

// replyToOfferedMergeRequest queues the comment of a Create{Note} in the discussion of a
// pull request offered upstream; it does nothing for any other Create.
func (f *federation) replyToOfferedMergeRequest(ctx context.Context, in *inbound) error {
	act := in.act
	note := commentNote(act)
	if note == nil {
		return nil
	}
	m, la, ok, err := f.offeredByThread(ctx, note)
	if err != nil || !ok {
		return err
	}
	actorID := act.Actor.ID()
	if !sameOrigin(actorID, m.TicketID) {
		return refuse(http.StatusForbidden, nil, "Note %s from %s about merge request %s: only its host speaks for its discussion", note.ID, hostOf(actorID), m.TicketID)
	}
	if err := checkNoteAuthor(act, note); err != nil {
		return err
	}
	body, format := noteBody(note)
	if len(body) > maxTicketBody {
		return refuse(http.StatusRequestEntityTooLarge, nil, "Note %s is larger than 64 KiB", note.ID)
	}
	if c, err := f.store.TicketCommentByNote(ctx, note.ID); err == nil && c.AuthorID != actorID {
		return refuse(http.StatusForbidden, nil, "Note %s was written by %s", note.ID, c.AuthorID)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	author, inbox, err := f.remoteAuthor(ctx, la, actorID)
	if err != nil {
		return err
	}
	if err := f.store.PutTicketComment(ctx, store.TicketComment{NoteID: note.ID, TicketID: m.TicketID, AuthorID: actorID}); err != nil {
		return err
	}
	return f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindComment, Number: m.Number, NoteID: note.ID,
		Comment: &forge.Comment{Body: body, Format: format, Author: author, ObjectID: note.ID},
		Origin:  forgewrite.Origin{ActivityID: act.ID, ActorID: actorID, Inbox: inbox, ObjectID: note.ID, TicketID: m.TicketID}})
}

// ownOfferedComment finds the comment written here for a Note of an offered pull
// request's discussion, refusing anyone but the Note's author; ok is false when the Note
// has no such comment.
func (f *federation) ownOfferedComment(ctx context.Context, act *activitypub.Object, noteID string) (store.TicketComment, store.OfferedMergeRequest, *localActor, bool, error) {
	var m store.OfferedMergeRequest
	c, err := f.store.TicketCommentByNote(ctx, noteID)
	if errors.Is(err, store.ErrNotFound) {
		return c, m, nil, false, nil
	} else if err != nil {
		return c, m, nil, false, err
	}
	if m, err = f.store.OfferedMergeRequestByTicket(ctx, c.TicketID); errors.Is(err, store.ErrNotFound) {
		return c, m, nil, false, nil
	} else if err != nil {
		return c, m, nil, false, err
	}
	if c.AuthorID != act.Actor.ID() {
		return c, m, nil, false, refuse(http.StatusForbidden, nil, "Note %s was written by %s, not by %s", noteID, c.AuthorID, act.Actor.ID())
	}
	if c.Deleted {
		return c, m, nil, false, nil
	}
	la, err := f.actors.byIRI(ctx, m.ActorID)
	if errors.Is(err, errNotLocal) {
		return c, m, nil, false, nil
	}
	return c, m, la, err == nil, err
}

// editOfferedComment queues the edit of the comment of an Update{Note} in an offered
// pull request's discussion.
func (f *federation) editOfferedComment(ctx context.Context, act *activitypub.Object) error {
	note := commentNote(act)
	if note == nil {
		return nil
	}
	c, m, la, ok, err := f.ownOfferedComment(ctx, act, note.ID)
	if err != nil || !ok {
		return err
	}
	if err := checkNoteAuthor(act, note); err != nil {
		return err
	}
	body, format := noteBody(note)
	if len(body) > maxTicketBody {
		return refuse(http.StatusRequestEntityTooLarge, nil, "Note %s is larger than 64 KiB", note.ID)
	}
	author, inbox, err := f.remoteAuthor(ctx, la, c.AuthorID)
	if err != nil {
		return err
	}
	return f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindEditComment, Number: m.Number, NoteID: note.ID,
		CommentID: c.CommentID, Comment: &forge.Comment{Body: body, Format: format, Author: author, ObjectID: note.ID},
		Origin: forgewrite.Origin{ActivityID: act.ID, ActorID: c.AuthorID, Inbox: inbox, ObjectID: note.ID, TicketID: c.TicketID}})
}

// deleteOfferedComment queues the deletion of the comment of a deleted Note of an
// offered pull request's discussion.
func (f *federation) deleteOfferedComment(ctx context.Context, act *activitypub.Object) error {
	noteID := act.Object.ID()
	c, m, la, ok, err := f.ownOfferedComment(ctx, act, noteID)
	if err != nil || !ok {
		return err
	}
	return f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindDeleteComment, Number: m.Number, NoteID: noteID,
		CommentID: c.CommentID, Origin: forgewrite.Origin{ActivityID: act.ID, ActorID: c.AuthorID, ObjectID: noteID, TicketID: c.TicketID}})
}
