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

// Replies to Tickets (ForgeFed: commenting): a Create{Note} in reply to a Ticket of an
// actor that takes tickets, or to a Note already written under one, becomes a forge
// comment crediting its author; Update of that Note edits the comment and Delete removes
// it, only for the Note's own author. Each is a queued forge write keyed by the
// activity's id. The Note is filed for its addressees as any Create is.

// commentNote is the Note of a Create or Update, or nil when the object is not a Note.
func commentNote(act *activitypub.Object) *activitypub.Object {
	o := act.Object.Object
	if o == nil || !o.Type.HasAny(activitypub.TypeNote, activitypub.TypeArticle) || o.ID == "" {
		return nil
	}
	return o
}

// checkNoteAuthor refuses a Note whose attributedTo is not the activity's sender.
func checkNoteAuthor(act, note *activitypub.Object) error {
	actorID := act.Actor.ID()
	if ids := note.AttributedTo.IDs(); len(ids) > 1 || (len(ids) == 1 && ids[0] != actorID) {
		return refuse(http.StatusForbidden, nil, "Note %s is attributed to %v, not to its sender %s", note.ID, ids, actorID)
	}
	if !sameOrigin(note.ID, actorID) {
		return refuse(http.StatusForbidden, nil, "Note %s is not on its sender's host %s", note.ID, hostOf(actorID))
	}
	return nil
}

// replyToTicket queues the comment of a Create{Note} that replies to one of our Tickets.
func (f *federation) replyToTicket(ctx context.Context, in *inbound) error {
	act := in.act
	note := commentNote(act)
	if note == nil {
		return nil
	}
	la, number, ticketID, ok, err := f.threadOf(ctx, note)
	if err != nil || !ok {
		return err
	}
	if ticketID == la.urls.MergeRequest(number) {
		if mr := la.obj.Spec.MergeRequests; mr == nil || !mr.Accept {
			return nil // filed, not written: the actor takes no merge requests
		}
	} else if takes, _ := takesTickets(la.obj); !takes {
		return nil // filed, not written: the actor takes no tickets
	}
	if err := checkNoteAuthor(act, note); err != nil {
		return err
	}
	body, format := noteBody(note)
	if len(body) > maxTicketBody {
		return refuse(http.StatusRequestEntityTooLarge, nil, "Note %s is larger than 64 KiB", note.ID)
	}
	actorID := act.Actor.ID()
	if c, err := f.store.TicketCommentByNote(ctx, note.ID); err == nil && c.AuthorID != actorID {
		return refuse(http.StatusForbidden, nil, "Note %s was written by %s", note.ID, c.AuthorID)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	author, inbox, err := f.remoteAuthor(ctx, la, actorID)
	if err != nil {
		return err
	}
	if err := f.store.PutTicketComment(ctx, store.TicketComment{NoteID: note.ID, TicketID: ticketID, AuthorID: actorID}); err != nil {
		return err
	}
	if err := f.tickets.participate(ctx, ticketID, actorID, inbox); err != nil {
		return err
	}
	return f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindComment, Number: number, NoteID: note.ID,
		Comment: &forge.Comment{Body: body, Format: format, Author: author, ObjectID: note.ID},
		Origin:  forgewrite.Origin{ActivityID: act.ID, ActorID: actorID, Inbox: inbox, ObjectID: note.ID, TicketID: ticketID}})
}

// threadOf finds the ticket a Note replies to (by inReplyTo, else context): the Ticket
// (an issue's or a merge request's) itself, a Note written under it, or a Note of a
// mention thread (mention_ticket.go). ticket is the Ticket's id.
func (f *federation) threadOf(ctx context.Context, note *activitypub.Object) (la *localActor, number int64, ticket string, ok bool, err error) {
	for _, parent := range []string{note.InReplyTo.ID(), note.ASContext.ID()} {
		if parent == "" {
			continue
		}
		if la, number, thread, ok := f.ticketOf(ctx, parent); ok {
			return la, number, thread, true, nil
		}
		ticket := ""
		// A reply to a Note written under a ticket.
		if c, err := f.store.TicketCommentByNote(ctx, parent); err == nil {
			ticket = c.TicketID
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, 0, "", false, err
		}
		// A reply to the Note that opened a ticket by mentioning its actor, or to our answer.
		if ticket == "" {
			if m, err := f.store.MentionTicketByNote(ctx, parent); err == nil {
				ticket = m.TicketID
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, 0, "", false, err
			}
		}
		if la, number, thread, ok := f.ticketOf(ctx, ticket); ok {
			return la, number, thread, true, nil
		}
	}
	return nil, 0, "", false, nil
}

// ownComment finds the comment written for a Note, refusing anyone but its author. ok is
// false when no comment was written for it (the activity is none of ours).
func (f *federation) ownComment(ctx context.Context, act *activitypub.Object, noteID string) (store.TicketComment, *localActor, int64, bool, error) {
	c, err := f.store.TicketCommentByNote(ctx, noteID)
	if errors.Is(err, store.ErrNotFound) {
		return c, nil, 0, false, nil
	} else if err != nil {
		return c, nil, 0, false, err
	}
	if c.AuthorID != act.Actor.ID() {
		return c, nil, 0, false, refuse(http.StatusForbidden, nil, "Note %s was written by %s, not by %s", noteID, c.AuthorID, act.Actor.ID())
	}
	if c.Deleted {
		return c, nil, 0, false, nil // its comment is gone: an Update or Delete changes nothing
	}
	la, number, _, ok := f.ticketOf(ctx, c.TicketID)
	return c, la, number, ok, nil
}

// editTicketComment queues the edit of the comment of an Update{Note}; handled is false
// when the Note has no comment here.
func (f *federation) editTicketComment(ctx context.Context, act *activitypub.Object) (bool, error) {
	note := commentNote(act)
	if note == nil {
		return false, nil
	}
	c, la, number, ok, err := f.ownComment(ctx, act, note.ID)
	if err != nil || !ok {
		return false, err
	}
	if err := checkNoteAuthor(act, note); err != nil {
		return true, err
	}
	body, format := noteBody(note)
	if len(body) > maxTicketBody {
		return true, refuse(http.StatusRequestEntityTooLarge, nil, "Note %s is larger than 64 KiB", note.ID)
	}
	author, inbox, err := f.remoteAuthor(ctx, la, c.AuthorID)
	if err != nil {
		return true, err
	}
	return true, f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindEditComment, Number: number, NoteID: note.ID,
		CommentID: c.CommentID, Comment: &forge.Comment{Body: body, Format: format, Author: author, ObjectID: note.ID},
		Origin: forgewrite.Origin{ActivityID: act.ID, ActorID: c.AuthorID, Inbox: inbox, ObjectID: note.ID, TicketID: c.TicketID}})
}

// deleteTicketComment queues the deletion of the comment of a deleted Note; handled is
// false when the Note has no comment here.
func (f *federation) deleteTicketComment(ctx context.Context, act *activitypub.Object) (bool, error) {
	noteID := act.Object.ID()
	c, la, number, ok, err := f.ownComment(ctx, act, noteID)
	if err != nil || !ok {
		return false, err
	}
	return true, f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindDeleteComment, Number: number, NoteID: noteID,
		CommentID: c.CommentID, Origin: forgewrite.Origin{ActivityID: act.ID, ActorID: c.AuthorID, ObjectID: noteID, TicketID: c.TicketID}})
}
