package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/store"
)

// Offering a pull request upstream (issue 14, fork side, docs/merge-requests.md step 2):
// a pull request in the forge of a Repository actor with an upstream, opened with the
// label spec.mergeRequests.label or labelled with it later, is offered to the upstream
// as ForgeFed asks: Offer{Ticket} whose attachment is an Offer of the head Branch (in
// this actor's repository) into the base Branch (in the upstream's). The offering actor
// is the Repository actor; the forge user who opened or labelled it is named in the
// Ticket. One Offer per pull request and upstream: its id derives from both, and the
// store records it before it goes out, so that the Accept, however fast, finds it.

// offerMergeRequest offers a labelled pull request of actor to its upstream. It runs for
// every authentic webhook event (sources.WebhookConfig.Observe) and does nothing for the
// others. An error is answered 500 to the forge.
func (f *federation) offerMergeRequest(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) error {
	if ev.Kind != forge.KindMergeRequest || (ev.Action != forge.ActionOpened && ev.Action != forge.ActionLabeled) {
		return nil
	}
	if actor.Spec.Type != fedv1.ActorRepository || !hasLabel(ev.Labels, mergeRequestLabel(actor)) {
		return nil
	}
	base, err := f.base(ctx)
	if err != nil {
		return err
	}
	la := &localActor{obj: actor, urls: urlsFor(base, actor)}
	up, err := f.upstreamOf(ctx, la)
	if err != nil || up == "" {
		return err
	}
	log := f.log.WithValues("actor", la.urls.ID, "upstream", up, "number", ev.Number)
	if ev.Number <= 0 || ev.SourceBranch == "" || ev.Branch == "" {
		log.Info("labelled pull request without number or branches: not offered", "delivery", ev.DeliveryID)
		return nil
	}
	m := store.OfferedMergeRequest{ActorID: la.urls.ID, Number: ev.Number, UpstreamID: up,
		OfferID: offerMergeRequestID(la.urls.ID, ev.Number, up), Head: ev.SourceBranch, Base: ev.Branch, Created: f.now().UTC()}
	created, err := f.store.RecordMergeRequestOffer(ctx, m)
	if err != nil {
		return err
	}
	if !created {
		if _, err := f.store.GetActivity(ctx, m.OfferID); err == nil {
			log.V(1).Info("pull request already offered", "offer", m.OfferID)
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// Recorded, but the Offer never went out (the upstream was unreachable): now.
	}
	cs, err := f.policies.load(ctx)
	if err != nil {
		return err
	}
	if v := verdictFor(cs, delivery.HostOf(up)); !v.allowed {
		f.refused.add(refusedDelivery, f.now(), v.by...)
		log.Info("the upstream's host is refused by policy: pull request not offered")
		return nil
	}
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return err
	}
	ra, err := f.remoteActor(ctx, up, signer, false)
	if err != nil {
		return fmt.Errorf("offering #%d of %s: resolving the upstream %s: %w", ev.Number, la.urls.ID, up, err)
	}
	offer := pullRequestOffer(la, ev, up, m.OfferID, f.now().UTC())
	if err := f.publish(ctx, la, offer, store.Direct, []Recipient{{Inbox: ra.Inbox}}); err != nil {
		return err
	}
	log.Info("pull request offered upstream", "offer", m.OfferID)
	return nil
}

// offerMergeRequestID is the id of the Offer of pull request number of actorID to up
// (docs/merge-requests.md: <R_B>/activities/offer-mr-<n>-...).
func offerMergeRequestID(actorID string, number int64, up string) string {
	sum := sha256.Sum256([]byte(up))
	return actorID + "/activities/offer-mr-" + strconv.FormatInt(number, 10) + "-" + hex.EncodeToString(sum[:8])
}

// hasLabel says labels hold want (forge labels compare case-insensitively).
func hasLabel(labels []string, want string) bool {
	for _, l := range labels {
		if strings.EqualFold(strings.TrimSpace(l), want) {
			return true
		}
	}
	return false
}

// pullRequestOffer builds the Offer of the contract: a Ticket attributed to the
// Repository actor, titled as the pull request, whose content names the forge user and
// links the pull request, and whose attachment offers the head branch into the base.
func pullRequestOffer(la *localActor, ev *forge.Event, up, offerID string, now time.Time) *activitypub.Object {
	title := strings.TrimSpace(ev.Title)
	if title == "" {
		title = "Pull request #" + strconv.FormatInt(ev.Number, 10)
	}
	who := ev.Actor.Display()
	if who == "" {
		who = "someone"
	}
	prRef := "pull request #" + strconv.FormatInt(ev.Number, 10)
	intro := "<p>" + htmlLink(ev.Actor.URL, who) + " offers " + htmlLink(ev.URL, prRef) + " of " +
		htmlLink(ev.Repository.WebURL, ev.Repository.FullName) + " from branch <code>" + html.EscapeString(ev.SourceBranch) + "</code>.</p>"
	content := intro
	if body := strings.TrimSpace(ev.Body); body != "" {
		content += render.Markdown(body)
	}
	source := "*" + mdLink(who, ev.Actor.URL) + " offers " + mdLink(prRef, ev.URL) + " of " + mdLink(ev.Repository.FullName, ev.Repository.WebURL) +
		" from branch `" + strings.ReplaceAll(ev.SourceBranch, "`", "") + "`.*"
	if body := strings.TrimSpace(ev.Body); body != "" {
		source += "\n\n" + body
	}
	ticket := &activitypub.Object{ID: la.urls.MergeRequest(ev.Number), Type: activitypub.Types{activitypub.TypeTicket},
		AttributedTo: activitypub.IRIRefs(la.urls.ID), Name: title, Summary: html.EscapeString(title),
		Content: content, MediaType: "text/html", Source: &activitypub.Content{Content: source, MediaType: "text/markdown"}}
	if u := render.CleanURL(ev.URL); u != "" {
		ticket.URL = activitypub.IRIRefs(u)
	}
	branch := func(context, name string) *activitypub.Object {
		b := &activitypub.Object{Type: activitypub.Types{activitypub.TypeBranch}, Name: name, ASContext: activitypub.IRIRef(context)}
		b.Ref = "refs/heads/" + name
		return b
	}
	patch := &activitypub.Object{Type: activitypub.Types{activitypub.TypeOffer},
		Origin: activitypub.ObjectRef(branch(la.urls.ID, ev.SourceBranch)), Target: activitypub.ObjectRef(branch(up, ev.Branch))}
	ticket.Attachment = activitypub.Refs{activitypub.ObjectRef(patch)}
	offer := activitypub.NewActivity(activitypub.TypeOffer, offerID, la.urls.ID, activitypub.Embed(ticket), activitypub.IRIRefs(up), nil)
	offer.Target = activitypub.IRIRef(up)
	offer.Published = activitypub.Time{Time: now}
	ticket.Published = offer.Published
	return offer
}

// htmlLink is <a href="u">text</a> with both escaped, or the escaped text when u is not
// an http(s) URL.
func htmlLink(u, text string) string {
	if !validHTTPURL(u) {
		return html.EscapeString(text)
	}
	return `<a href="` + html.EscapeString(u) + `">` + html.EscapeString(text) + `</a>`
}

// mdLink is a Markdown link with its text escaped, or the escaped text alone.
func mdLink(text, u string) string {
	var b strings.Builder
	for _, r := range text {
		if r < 128 && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	if !validHTTPURL(u) || strings.ContainsAny(u, "<> \n\r") {
		return b.String()
	}
	return "[" + b.String() + "](<" + u + ">)"
}
