package delivery

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/fedforge/fedforge/internal/store"
)

// Recipient is one remote actor an activity goes to: its personal inbox, and its
// server's shared inbox (endpoints.sharedInbox) when it has one.
type Recipient struct {
	// Inbox is the actor's personal inbox.
	Inbox string
	// SharedInbox is endpoints.sharedInbox, empty when the peer has none.
	SharedInbox string
}

// Appender is the part of store.Store that publishing needs.
type Appender interface {
	// AppendActivity stores a and enqueues its targets in one transaction.
	AppendActivity(ctx context.Context, a store.Activity, targets []store.DeliveryTarget) (bool, error)
}

// Kicker wakes an executor after a publish; *Executor implements it.
type Kicker interface {
	// Kick asks for a delivery round now; it must not block.
	Kick()
}

// Publisher appends an activity to the outbox and enqueues its deliveries in one store
// transaction, then wakes the executor. A crash at any point loses nothing: either
// neither the activity nor its deliveries exist, or both do. It writes nothing to the
// Kubernetes API server, whatever the number of recipients.
type Publisher struct {
	store Appender
	kick  Kicker
}

// NewPublisher returns a Publisher on s; k (may be nil) is kicked after each publish.
func NewPublisher(s Appender, k Kicker) *Publisher { return &Publisher{store: s, kick: k} }

// Publish stores a and enqueues one delivery per shared inbox, else per inbox, without
// duplicates. Republishing an ID that exists is a no-op, so callers may retry.
func (p *Publisher) Publish(ctx context.Context, a store.Activity, to []Recipient) error {
	targets := Targets(to)
	created, err := p.store.AppendActivity(ctx, a, targets)
	if err != nil {
		return fmt.Errorf("delivery: publishing %s to %d inboxes: %w", a.ID, len(targets), err)
	}
	if created && len(targets) > 0 && p.kick != nil {
		p.kick.Kick()
	}
	return nil
}

// Targets turns recipients into delivery targets: one per shared inbox, else one per
// personal inbox, deduplicated, in first-seen order. Recipients whose inbox is not an
// absolute http(s) URL are skipped (they cannot be delivered to).
func Targets(to []Recipient) []store.DeliveryTarget {
	seen := make(map[string]bool, len(to))
	out := make([]store.DeliveryTarget, 0, len(to))
	for _, r := range to {
		inbox := r.SharedInbox
		if inbox == "" {
			inbox = r.Inbox
		}
		if inbox == "" || seen[inbox] {
			continue
		}
		host := HostOf(inbox)
		if host == "" {
			continue
		}
		seen[inbox] = true
		out = append(out, store.DeliveryTarget{Inbox: inbox, Host: host})
	}
	return out
}

// HostOf returns the lower-cased host[:port] of an http(s) URL, the unit of per-host
// concurrency, circuit breaking and unavailability; "" when u is not such a URL.
func HostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil {
		return ""
	}
	return strings.ToLower(p.Host)
}
