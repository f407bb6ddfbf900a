package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
)

// ticketOf returns the Ticket an outbound activity of la is about, found by the Ticket's
// followers collection in its addressing (internal/render addresses every activity of a
// discussion, a comment, its edit or deletion, a Resolve, to <ticket>/followers), or "".
func ticketOf(la *localActor, raw json.RawMessage) string {
	for _, ids := range addressed(raw, true) {
		for _, id := range ids {
			thread, ok := strings.CutSuffix(id, "/followers")
			if !ok {
				continue
			}
			for _, kind := range []string{"/issues/", "/merge-requests/"} {
				if rest, ok := strings.CutPrefix(thread, la.urls.ID+kind); ok && rest != "" && !strings.Contains(rest, "/") {
					return thread
				}
			}
		}
	}
	return ""
}

// ticketAudience adds a Ticket's participants (the remote author who offered it and
// everyone who replied from the Fediverse: store.TicketParticipants) to the recipients of
// an activity about it, with the FederationPolicy applied per host as for followers. The
// Publisher dedupes inboxes; a participant who also follows the repository through a
// shared inbox gets a second POST at their personal inbox, which receivers dedupe by id.
func (f *federation) ticketAudience(ctx context.Context, la *localActor, raw json.RawMessage, to []Recipient) ([]Recipient, error) {
	ticket := ticketOf(la, raw)
	if ticket == "" {
		return to, nil
	}
	ps, err := f.store.TicketParticipants(ctx, ticket)
	if err != nil || len(ps) == 0 {
		return to, err
	}
	cs, err := f.policies.load(ctx)
	if err != nil {
		return nil, err
	}
	out := append([]Recipient(nil), to...)
	for _, p := range ps {
		if p.Inbox == "" {
			continue
		}
		if v := verdictFor(cs, delivery.HostOf(p.Inbox)); !v.allowed {
			f.refused.add(refusedDelivery, f.now(), v.by...)
			continue
		}
		// The personal inbox, not the shared one: the activity names the Ticket's
		// followers collection, not the participant, so a server filing what reaches its
		// shared inbox by addressee and followed actor (ours does, as Mastodon does) would
		// find nobody it concerns and drop it.
		out = append(out, Recipient{Inbox: p.Inbox})
	}
	return out, nil
}

// addressedRemotes adds the remote actors an activity names in to or cc (a Direct note, an
// Offer to another instance's repository, a reply to a Ticket there: what an owner posts to
// its outbox, internal/sources) to its recipients: each is resolved to its inbox through
// the remote-actor cache (fetched, signed, through the outbound guard, when not cached) and
// checked against the FederationPolicy. The public collection, collections and our own
// IRIs are not actors to resolve.
func (f *federation) addressedRemotes(ctx context.Context, la *localActor, raw json.RawMessage, to []Recipient) ([]Recipient, error) {
	base, _, err := f.actors.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	local := strings.TrimRight(base, "/") + "/"
	var ids []string
	for _, list := range addressed(raw, false) {
		for _, id := range list {
			if activitypub.IsPublicIRI(id) || strings.HasPrefix(id, local) || strings.HasSuffix(id, "/followers") || strings.HasSuffix(id, "/following") {
				continue
			}
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return to, nil
	}
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return nil, err
	}
	cs, err := f.policies.load(ctx)
	if err != nil {
		return nil, err
	}
	out := append([]Recipient(nil), to...)
	for _, id := range ids {
		if v := verdictFor(cs, delivery.HostOf(id)); !v.allowed {
			f.refused.add(refusedDelivery, f.now(), v.by...)
			continue
		}
		ra, err := f.remoteActor(ctx, id, signer, false)
		if err != nil {
			return nil, fmt.Errorf("resolving addressee %s: %w", id, err)
		}
		out = append(out, Recipient{Inbox: ra.Inbox, SharedInbox: ra.SharedInbox})
	}
	return out, nil
}

// addressed returns the IRIs of an activity's to and cc (and audience, when asked), each
// field read as a list or a single IRI, as AS2 allows.
func addressed(raw json.RawMessage, audience bool) [][]string {
	var addr struct {
		To, Cc, Audience json.RawMessage
	}
	if json.Unmarshal(raw, &addr) != nil {
		return nil
	}
	fields := []json.RawMessage{addr.To, addr.Cc}
	if audience {
		fields = append(fields, addr.Audience)
	}
	var out [][]string
	for _, field := range fields {
		var list []string
		if json.Unmarshal(field, &list) != nil {
			var one string
			if json.Unmarshal(field, &one) != nil {
				continue
			}
			list = []string{one}
		}
		out = append(out, list)
	}
	return out
}
