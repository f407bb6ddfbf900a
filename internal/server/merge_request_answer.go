package server

import (
	"context"
	"errors"
	"html"
	"net/http"
	"strings"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/store"
)

// The upstream's answer to a pull request offered from here (issue 14, fork side): an
// Accept names the merge-request Ticket the upstream opened (Accept.result), which is
// recorded against the pull request and linked from a comment on it; a Reject's reason
// becomes a comment. Either is a queued forge write keyed by the answer's id. The
// answer is also filed for its addressees, as every Accept and Reject is (accept.go).

// offeredMergeRequestOf returns the offered pull request an activity answers (its object
// is the Offer), the local actor that offered it, and whether there is one.
func (f *federation) offeredMergeRequestOf(ctx context.Context, act *activitypub.Object) (store.OfferedMergeRequest, *localActor, bool, error) {
	offerID := act.Object.ID()
	if offerID == "" {
		return store.OfferedMergeRequest{}, nil, false, nil
	}
	m, err := f.store.OfferedMergeRequestByOffer(ctx, offerID)
	if errors.Is(err, store.ErrNotFound) {
		return m, nil, false, nil
	} else if err != nil {
		return m, nil, false, err
	}
	la, err := f.actors.byIRI(ctx, m.ActorID)
	if errors.Is(err, errNotLocal) {
		return m, nil, false, nil // the actor is gone: the answer is filed, nothing written
	} else if err != nil {
		return m, nil, false, err
	}
	return m, la, true, nil
}

// answerMergeRequestOffer handles an Accept or Reject of one of our merge-request
// Offers; it does nothing for an answer to anything else.
func (f *federation) answerMergeRequestOffer(ctx context.Context, in *inbound) error {
	act := in.act
	m, la, ok, err := f.offeredMergeRequestOf(ctx, act)
	if err != nil || !ok {
		return err
	}
	sender := act.Actor.ID()
	if sender != m.UpstreamID {
		return refuse(http.StatusForbidden, nil, "%s answered an Offer sent to %s", sender, m.UpstreamID)
	}
	var body, ticket string
	if act.Type.Has(activitypub.TypeAccept) {
		ticket = act.Result.ID()
		if ticket == "" || !sameOrigin(ticket, m.UpstreamID) {
			return refuse(http.StatusBadRequest, nil, "Accept of merge request offer %s from %s: result %q is not a Ticket on the upstream's host", m.OfferID, hostOf(sender), ticket)
		}
		if m.TicketID == ticket {
			return nil // the same answer again, under another id
		}
		// Closed here before this answer (merge_request_withdraw.go): the withdrawal
		// follows at once, sent before the Ticket is recorded so that a retried Accept
		// sends it again (same id) rather than never.
		withdrawn, err := f.store.OfferWithdrawn(ctx, m.OfferID)
		if err != nil {
			return err
		}
		if withdrawn {
			wm := m
			wm.TicketID = ticket
			if err := f.sendWithdrawal(ctx, la, wm, false, act.ID, "<p>"+htmlLink(la.urls.MergeRequest(m.Number), "The pull request")+
				" offered as "+htmlLink(ticket, "this merge request")+" was closed before the offer was answered.</p>"); err != nil {
				return err
			}
		}
		if err := f.store.AnswerMergeRequestOffer(ctx, m.OfferID, store.OfferedAccepted, ticket); err != nil {
			return err
		}
		body = "<p>Offered upstream to " + htmlLink(m.UpstreamID, m.UpstreamID) + ": it opened " + htmlLink(ticket, "its merge request") +
			". Comments here and there are carried both ways; pushes to <code>" + html.EscapeString(m.Head) + "</code> update it.</p>"
		if withdrawn {
			body += "<p>This pull request was closed here before that answer, so the upstream was asked to close its merge request too.</p>"
		}
	} else {
		if m.State == store.OfferedRejected {
			return nil
		}
		if err := f.store.AnswerMergeRequestOffer(ctx, m.OfferID, store.OfferedRejected, ""); err != nil {
			return err
		}
		reason := strings.TrimSpace(act.Summary)
		if reason == "" {
			reason = strings.TrimSpace(render.SanitizeHTML(act.Content))
		}
		body = "<p>The upstream " + htmlLink(m.UpstreamID, m.UpstreamID) + " did not take this pull request"
		if reason != "" {
			body += ": " + html.EscapeString(truncate(stripTags(reason), 500))
		}
		body += ".</p>"
	}
	f.log.Info("answer to an offered pull request", "actor", m.ActorID, "number", m.Number, "answer", act.Type[0], "ticket", ticket, "host", hostOf(sender))
	return f.noticeOnPull(ctx, la, m, act, body, ticket)
}

// noticeOnPull queues a comment on the offered pull request in the local forge, credited
// to the upstream actor and keyed by the activity that caused it.
func (f *federation) noticeOnPull(ctx context.Context, la *localActor, m store.OfferedMergeRequest, act *activitypub.Object, body, object string) error {
	author, _, err := f.remoteAuthor(ctx, la, m.UpstreamID)
	if err != nil {
		return err
	}
	if object == "" {
		object = act.ID
	}
	thread := m.TicketID
	if thread == "" {
		thread = la.urls.MergeRequest(m.Number)
	}
	return f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindComment, Number: m.Number, NoteID: act.ID,
		Comment: &forge.Comment{Body: body, Format: forge.FormatHTML, Author: author, ObjectID: object},
		Origin:  forgewrite.Origin{ActivityID: act.ID, ActorID: m.UpstreamID, ObjectID: act.ID, TicketID: thread}})
}

// stripTags drops what looks like markup from a reason (it is escaped afterwards).
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return html.UnescapeString(b.String())
}
