package server

import (
	"context"
	"errors"
	"html"
	"net/http"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/store"
)

// onResolve handles Resolve (ForgeFed: a Ticket closed; a merge request merged when its
// result is the merge Commit). For the upstream's merge-request Ticket of a pull request
// offered from here (issue 14, fork side, docs/merge-requests.md step 5): with a Commit
// result, a comment "merged upstream as <hash>" and the pull request closed; without, a
// comment that it was closed upstream without merge (the pull request stays open: Alice
// may push more or ask again). Both are queued forge writes keyed by the Resolve's id,
// and only the host that holds the Ticket may send them (403 otherwise, nothing
// written). A Resolve of anything else changes nothing here; it is filed for its
// addressees like any activity (someone following a Ticket elsewhere reads it).
func (f *federation) onResolve(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	if out, handled, err := f.resolveByOrigin(ctx, in, act.Object.ID(), false); handled { // resolve_origin.go
		return out, err
	}
	m, la, ok, err := f.offeredByTicket(ctx, act, act.Object.ID())
	if err != nil {
		return nil, err
	}
	if !ok {
		f.log.V(1).Info("Resolve of nothing offered from here: filed only", "object", act.Object.ID(), "host", hostOf(act.Actor.ID()))
		return f.addressees(ctx, act, in.recipient)
	}
	var body string
	state, closePull := store.OfferedClosed, false
	if res := act.Result.Object; res != nil && res.Type.Has(activitypub.TypeCommit) && res.Hash != "" {
		state, closePull = store.OfferedMerged, true
		commit := html.EscapeString(res.Hash)
		if u := firstURL(res); u != "" {
			commit = htmlLink(u, res.Hash)
		} else if validHTTPURL(res.ID) {
			commit = htmlLink(res.ID, res.Hash)
		}
		body = "<p>Merged upstream as <code>" + commit + "</code> (" + htmlLink(m.TicketID, "merge request") + " of " +
			htmlLink(m.UpstreamID, m.UpstreamID) + "). Closing this pull request.</p>"
	} else {
		body = "<p>The upstream " + htmlLink(m.UpstreamID, m.UpstreamID) + " closed its " + htmlLink(m.TicketID, "merge request") +
			" without merging it. This pull request stays open.</p>"
	}
	if m.State == state {
		f.log.V(1).Info("offered pull request already in this state: nothing written", "ticket", m.TicketID, "state", state)
		return []string{la.urls.ID}, nil
	}
	if !closePull {
		// Withdrawn here (merge_request_withdraw.go): the upstream's close only answers
		// ours (its echo, which the upstream does not send unless a webhook was retried):
		// Alice, who closed her pull request, is told nothing, and her reopening still
		// goes upstream.
		if w, err := f.store.OfferWithdrawn(ctx, m.OfferID); err != nil {
			return nil, err
		} else if w {
			f.log.V(1).Info("upstream close of a withdrawn pull request: nothing written", "ticket", m.TicketID)
			return []string{la.urls.ID}, nil
		}
	}
	if err := f.store.AnswerMergeRequestOffer(ctx, m.OfferID, state, ""); err != nil {
		return nil, err
	}
	if err := f.noticeOnPull(ctx, la, m, act, body, m.TicketID); err != nil {
		return nil, err
	}
	if closePull {
		if err := f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindClose, Number: m.Number,
			Origin: forgewrite.Origin{ActivityID: act.ID + "#close", ActorID: m.UpstreamID, ObjectID: m.TicketID, TicketID: m.TicketID}}); err != nil {
			return nil, err
		}
	}
	f.log.Info("offered pull request resolved upstream", "actor", m.ActorID, "number", m.Number, "ticket", m.TicketID, "state", state)
	return []string{la.urls.ID}, nil
}

// undoResolve handles Undo{Resolve} of the upstream's Ticket of a pull request offered
// from here: a comment that it was reopened upstream. handled is false for any other Undo.
func (f *federation) undoResolve(ctx context.Context, in *inbound) ([]string, bool, error) {
	act := in.act
	inner := act.Object.Object
	if inner == nil || !inner.Type.Has(activitypub.TypeResolve) {
		return nil, false, nil
	}
	if out, handled, err := f.resolveByOrigin(ctx, in, inner.Object.ID(), true); handled { // resolve_origin.go
		return out, true, err
	}
	m, la, ok, err := f.offeredByTicket(ctx, act, inner.Object.ID())
	if err != nil || !ok {
		return nil, ok, err
	}
	if m.State == store.OfferedAccepted {
		// Open on both sides already, unless Alice withdrew it here (merge_request_withdraw.go)
		// and the upstream's people reopened it there: then she is told.
		if w, err := f.store.OfferWithdrawn(ctx, m.OfferID); err != nil || !w {
			return []string{la.urls.ID}, true, err
		}
	} else if err := f.store.AnswerMergeRequestOffer(ctx, m.OfferID, store.OfferedAccepted, ""); err != nil {
		return nil, true, err
	}
	body := "<p>The upstream " + htmlLink(m.UpstreamID, m.UpstreamID) + " reopened its " + htmlLink(m.TicketID, "merge request") + ".</p>"
	return []string{la.urls.ID}, true, f.noticeOnPull(ctx, la, m, act, body, m.TicketID)
}

// offeredByTicket finds the offered pull request whose upstream Ticket is ticket, and
// refuses a sender on another host than the Ticket's (403).
func (f *federation) offeredByTicket(ctx context.Context, act *activitypub.Object, ticket string) (store.OfferedMergeRequest, *localActor, bool, error) {
	if ticket == "" {
		return store.OfferedMergeRequest{}, nil, false, nil
	}
	m, err := f.store.OfferedMergeRequestByTicket(ctx, ticket)
	if errors.Is(err, store.ErrNotFound) {
		return m, nil, false, nil
	} else if err != nil {
		return m, nil, false, err
	}
	if sender := act.Actor.ID(); !sameOrigin(sender, m.TicketID) {
		return m, nil, false, refuse(http.StatusForbidden, nil, "%s from %s about merge request %s: only its host speaks for it", act.Type[0], hostOf(sender), m.TicketID)
	}
	la, err := f.actors.byIRI(ctx, m.ActorID)
	if errors.Is(err, errNotLocal) {
		return m, nil, false, nil
	} else if err != nil {
		return m, nil, false, err
	}
	return m, la, true, nil
}

// firstURL is the first http(s) url of an object.
func firstURL(o *activitypub.Object) string {
	for _, u := range o.URL.IDs() {
		if validHTTPURL(u) {
			return u
		}
	}
	return ""
}
