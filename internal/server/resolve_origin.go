package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/store"
)

// Withdrawal and reopening by the submitter (issue 14, upstream side,
// docs/merge-requests.md "Withdrawal and reopening"): the Repository actor that offered a
// federated merge request (R_B) closed its own pull request → Resolve of
// <R_A>/merge-requests/<n> without result; reopened it → Undo{Resolve}. Only that actor
// may send them (403 otherwise, nothing written): ForgeFed lets a Ticket's author and
// those with the tracker's permission resolve it, and a remote submitter holds no other
// permission here. The pull request in the forge is closed (reopened) through the
// durable forge-write queue with a comment crediting R_B, each keyed by the activity's
// id. The store records the close as the origin's before the write is queued, so that
// the forge's own webhook of that close is recognised and not sent back to R_B
// (merge_request_outbound.go), and so that R_B may reopen only what it closed, never a
// pull request the project's people closed.

// resolveByOrigin handles a Resolve (reopen false) or Undo{Resolve} (reopen true) of
// ticket when ticket is a federated merge request of a local actor; handled is false
// for any other Ticket.
func (f *federation) resolveByOrigin(ctx context.Context, in *inbound, ticket string, reopen bool) ([]string, bool, error) {
	if ticket == "" {
		return nil, false, nil
	}
	rec, err := f.store.GetMergeRequest(ctx, ticket)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	} else if err != nil {
		return nil, true, err
	}
	la, err := f.actors.byIRI(ctx, rec.ActorID)
	if errors.Is(err, errNotLocal) {
		return nil, false, nil
	} else if err != nil {
		return nil, true, err
	}
	act := in.act
	sender := act.Actor.ID()
	if sender != rec.OriginActor {
		return nil, true, refuse(http.StatusForbidden, nil, "%s of merge request %s from %s: only %s, which offered it, may close or reopen it",
			act.Type[0], ticket, hostOf(sender), rec.OriginActor)
	}
	if act.Result.ID() != "" || act.Result.Object != nil {
		return nil, true, refuse(http.StatusBadRequest, nil, "Resolve of merge request %s from %s with a result: only the upstream merges", ticket, hostOf(sender))
	}
	log := f.log.WithValues("actor", rec.ActorID, "number", rec.Number, "ticket", ticket, "host", hostOf(sender), "activity", act.ID)
	var changed bool
	if reopen {
		changed, err = f.store.ReopenWithdrawnMergeRequest(ctx, ticket)
	} else {
		changed, err = f.store.SetMergeRequestClosed(ctx, ticket, true, true)
	}
	if err != nil {
		return nil, true, err
	}
	if !changed {
		log.Info("close or reopen from the submitter changes nothing (already so, or closed by the project: only its own close may it undo)", "reopen", reopen)
		return []string{la.urls.ID}, true, nil
	}
	author, _, err := f.remoteAuthor(ctx, la, sender)
	if err != nil {
		return nil, true, err
	}
	body, kind, suffix := "<p>Closed: the submitter closed its pull request ("+htmlLink(sender, sender)+"), withdrawing this merge request.</p>", forgewrite.KindClose, "#close"
	if reopen {
		body, kind, suffix = "<p>Reopened: the submitter reopened its pull request ("+htmlLink(sender, sender)+").</p>", forgewrite.KindReopen, "#reopen"
	}
	if s := render.SanitizeHTML(truncate(act.Summary, 2000)); s != "" {
		body += s // who did it on the fork, with a link to the pull request there
	}
	origin := forgewrite.Origin{ActivityID: act.ID, ActorID: sender, ObjectID: act.ID, TicketID: ticket}
	if err := f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: forgewrite.KindComment, Number: rec.Number, NoteID: act.ID,
		Comment: &forge.Comment{Body: body, Format: forge.FormatHTML, Author: author, ObjectID: act.ID}, Origin: origin}); err != nil {
		return nil, true, err
	}
	origin.ActivityID += suffix
	if err := f.tickets.queue(ctx, la.urls.ID, forgewrite.Op{Kind: kind, Number: rec.Number, Origin: origin}); err != nil {
		return nil, true, err
	}
	log.Info("merge request closed or reopened by its submitter", "reopen", reopen)
	return []string{la.urls.ID}, true, nil
}
