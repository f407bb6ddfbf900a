package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Instance is which server a database belongs to.
type Instance interface {
	// ClaimHost records host (the FederationServer's spec.host) as the owner of this
	// database when none is recorded, and returns ErrHostMismatch when another host is:
	// two servers pointed at one database would mix their activities and queues. Hosts
	// compare case-insensitively. Claiming the recorded host again succeeds, so every
	// replica and every restart of one server may call it.
	ClaimHost(ctx context.Context, host string) error
	// Ping checks that the database answers a query now (readiness, issue 15).
	Ping(ctx context.Context) error
}

// IsUnavailable reports whether err says that the database could not be reached or is
// going away (a connection refused or reset, PostgreSQL shutting down or restarting,
// too many connections, a locked SQLite file), as opposed to a statement that is wrong.
// Callers answer 503 with Retry-After for these, so that peers come back later.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-03: admin shutdown, crash shutdown,
		// cannot connect now; 53300: too many connections.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" ||
			pgErr.Code == "57P03" || pgErr.Code == "53300"
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	// pgx reports a connection it closed after a network failure by text only.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

func (s *sqlStore) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
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
