package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Instance is which server a database belongs to.
type Instance interface {
	// ClaimHost records host (the FederationServer's spec.host) as the owner of this
	// database when none is recorded, and returns ErrHostMismatch when another host is:
	// two servers pointed at one database would mix their activities and queues. Hosts
	// compare case-insensitively. Claiming the recorded host again succeeds, so every
	// replica and every restart of one server may call it.
	ClaimHost(ctx context.Context, host string) error
}

// ErrHostMismatch is returned by ClaimHost when the database belongs to another host.
var ErrHostMismatch = errors.New("store: the database belongs to another server")

func (s *sqlStore) ClaimHost(ctx context.Context, host string) error {
	host = strings.ToLower(strings.TrimSpace(host))
	if host == "" {
		return errors.New("store: ClaimHost: empty host")
	}
	return s.inTx(ctx, func(t tx) error {
		// ON CONFLICT DO NOTHING is the same statement on both engines; the read after
		// it sees this transaction's row or the one a concurrent replica committed.
		if _, err := t.exec(ctx, `INSERT INTO instance (id, host, claimed) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`,
			host, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("store: claim host: %w", err)
		}
		var owner string
		if err := t.queryRow(ctx, `SELECT host FROM instance WHERE id = 1`).Scan(&owner); err != nil {
			return fmt.Errorf("store: read host claim: %w", err)
		}
		if owner != host {
			return fmt.Errorf("%w: it was claimed by %q, this server is %q; give each FederationServer its own database", ErrHostMismatch, owner, host)
		}
		return nil
	})
}
