package server

import (
	"context"
	"html"
	"strconv"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/store"
)

// Withdrawing a merge request from the fork (issue 14, fork side, docs/merge-requests.md
// "Withdrawal and reopening"): Alice closes her offered pull request in forge B (not a
// merge) → R_B sends Resolve of the upstream's merge-request Ticket, without result, to
// R_A; she reopens it → Undo{Resolve}. The pull request's own Resolve (of
// <R_B>/merge-requests/<n>) still goes to R_B's followers as before: these go to R_A only.
//
// Only a pull request whose offer is still open (offered or accepted) is withdrawn: once
// the upstream merged, closed or rejected it there is nothing to withdraw, which is also
// how the close Fedforge B makes itself after an upstream merge (state merged) sends
// nothing. Closed before the upstream answered: the row is marked withdrawn and nothing
// goes out yet (there is no Ticket to name); the Accept, when it comes, is followed at
// once by the Resolve (answerMergeRequestOffer), so the upstream closes what it opened.

// withdrawOffered handles a forge event of actor that closes or reopens a pull request
// it offered upstream. It runs for every authentic webhook event
// (sources.WebhookConfig.Observe, beside offerMergeRequest) and does nothing for the
// others. An error is answered 500 to the forge, which retries: the activity ids derive
// from the event, so a retry sends nothing twice.
func (f *federation) withdrawOffered(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) error {
	if ev.Kind != forge.KindMergeRequest || (ev.Action != forge.ActionClosed && ev.Action != forge.ActionReopened) ||
		actor.Spec.Type != fedv1.ActorRepository || ev.Number <= 0 {
		return nil
	}
	base, err := f.base(ctx)
	if err != nil {
		return err
	}
	la := &localActor{obj: actor, urls: urlsFor(base, actor)}
	rows, err := f.store.OfferedMergeRequestsOf(ctx, la.urls.ID, ev.Number)
	if err != nil || len(rows) == 0 {
		return err
	}
	reopen := ev.Action == forge.ActionReopened
	verb := "closed"
	if reopen {
		verb = "reopened"
	}
	who := html.EscapeString(ev.Actor.Display())
	if u := ev.Actor.URL; validHTTPURL(u) && who != "" {
		who = htmlLink(u, ev.Actor.Display())
	}
	for _, m := range rows {
		log := f.log.WithValues("actor", m.ActorID, "number", m.Number, "upstream", m.UpstreamID, "action", ev.Action)
		if !m.State.Open() {
			log.V(1).Info("pull request closed or reopened after the upstream settled its offer: nothing sent", "state", m.State)
			continue
		}
		if _, err := f.store.SetOfferWithdrawn(ctx, m.OfferID, !reopen); err != nil {
			return err
		}
		if m.TicketID == "" {
			log.Info("offered pull request closed or reopened before the upstream answered: the Accept will be followed by the withdrawal if it is still closed then")
			continue
		}
		summary := "<p>" + who + " " + verb + " " + htmlLink(la.urls.MergeRequest(m.Number), "pull request #"+strconv.FormatInt(m.Number, 10)) +
			", offered as " + htmlLink(m.TicketID, "this merge request") + ".</p>"
		if err := f.sendWithdrawal(ctx, la, m, reopen, ev.Identity, summary); err != nil {
			return err
		}
		log.Info("withdrawal of an offered pull request sent upstream", "ticket", m.TicketID, "reopen", reopen)
	}
	return nil
}

// sendWithdrawal sends R_A the Resolve (reopen: the Undo of a Resolve) of its merge-request
// Ticket m.TicketID, from the local actor that offered it, addressed to R_A only. Its id
// derives from the Ticket and seed (the forge event's identity, or the Accept's id), so
// a retry republishes nothing. A host a FederationPolicy refuses is sent nothing.
func (f *federation) sendWithdrawal(ctx context.Context, la *localActor, m store.OfferedMergeRequest, reopen bool, seed, summary string) error {
	cs, err := f.policies.load(ctx)
	if err != nil {
		return err
	}
	if v := verdictFor(cs, delivery.HostOf(m.UpstreamID)); !v.allowed {
		f.refused.add(refusedDelivery, f.now(), v.by...)
		f.log.Info("the upstream's host is refused by policy: withdrawal not sent", "upstream", m.UpstreamID)
		return nil
	}
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return err
	}
	ra, err := f.remoteActor(ctx, m.UpstreamID, signer, false)
	if err != nil {
		return err
	}
	to := activitypub.IRIRefs(m.UpstreamID)
	var act *activitypub.Object
	if reopen {
		undone := &activitypub.Object{Type: activitypub.Types{activitypub.TypeResolve}, Actor: activitypub.IRIRef(la.urls.ID),
			Object: activitypub.IRIRef(m.TicketID)}
		act = activitypub.NewActivity(activitypub.TypeUndo, activityID(la.urls.ID, "Undo", "reopen-mr|"+m.TicketID+"|"+seed), la.urls.ID,
			activitypub.ObjectRef(undone), to, nil)
	} else {
		act = activitypub.NewActivity(activitypub.TypeResolve, activityID(la.urls.ID, "Resolve", "withdraw-mr|"+m.TicketID+"|"+seed), la.urls.ID,
			activitypub.IRIRef(m.TicketID), to, nil)
	}
	act.Summary, act.Published = summary, activitypub.Time{Time: f.now().UTC()}
	return f.publish(ctx, la, act, store.Direct, []Recipient{{Inbox: ra.Inbox}})
}
