package server

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/fedforge/fedforge/internal/delivery"
)

// ticketOf returns the Ticket an outbound activity of la is about, found by the Ticket's
// followers collection in its addressing (internal/render addresses every activity of a
// discussion, a comment, its edit or deletion, a Resolve, to <ticket>/followers), or "".
func ticketOf(la *localActor, raw json.RawMessage) string {
	var addr struct {
		To, Cc, Audience json.RawMessage
	}
	if json.Unmarshal(raw, &addr) != nil {
		return ""
	}
	for _, field := range []json.RawMessage{addr.To, addr.Cc, addr.Audience} {
		var ids []string
		if json.Unmarshal(field, &ids) != nil {
			var one string
			if json.Unmarshal(field, &one) != nil {
				continue
			}
			ids = []string{one}
		}
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
// Publisher dedupes inboxes, so a participant who also follows the repository gets it once.
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
		out = append(out, Recipient{Inbox: p.Inbox, SharedInbox: p.SharedInbox})
	}
	return out, nil
}
