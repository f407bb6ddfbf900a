package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SignatureProfile is how requests to one peer host are signed and how that was learnt
// (internal/activitypub's HostProfile, as stored): shared by every replica and by
// delivery Jobs, and listed by `fedforge signatures`.
type SignatureProfile struct {
	// Host is host[:port], lower-cased.
	Host string
	// Profile is cavage, rfc9421-rsa or rfc9421-ed25519.
	Profile string
	// Source is pinned, knock, accept-signature, inbound or nodeinfo.
	Source string
	// Software is the peer's NodeInfo "name/version", empty when unknown.
	Software string
	// UpdatedAt is when it was learnt (UTC).
	UpdatedAt time.Time
}

// SourcePinned is the Source of a profile a platform team pinned in the FederationServer
// spec; a learnt profile never replaces it.
const SourcePinned = "pinned"

// SignatureProfiles stores the signature profile of each peer host.
type SignatureProfiles interface {
	// PutSignatureProfile inserts or replaces the host's profile. A pinned row is
	// replaced only by another pinned one: replaced reports whether the row was written.
	PutSignatureProfile(ctx context.Context, p SignatureProfile) (replaced bool, err error)
	// GetSignatureProfile returns the host's profile, or ErrNotFound.
	GetSignatureProfile(ctx context.Context, host string) (SignatureProfile, error)
	// ListSignatureProfiles returns every stored profile, by host.
	ListSignatureProfiles(ctx context.Context) ([]SignatureProfile, error)
	// UnpinSignatureProfiles deletes the pinned rows of hosts not in keep (pins removed
	// from the spec), so that those hosts are learnt again; it returns the hosts removed.
	UnpinSignatureProfiles(ctx context.Context, keep []string) ([]string, error)
}

// PutSignatureProfile implements SignatureProfiles.
func (s *sqlStore) PutSignatureProfile(ctx context.Context, p SignatureProfile) (bool, error) {
	p.Host = strings.ToLower(p.Host)
	if p.Host == "" || p.Profile == "" || p.Source == "" {
		return false, errors.New("store: signature profile needs a host, a profile and a source")
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = utcNow()
	}
	var n int64
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `INSERT INTO signature_profiles (host, profile, source, software, updated_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (host) DO UPDATE SET profile = excluded.profile, source = excluded.source,
				software = excluded.software, updated_at = excluded.updated_at
			WHERE signature_profiles.source <> ? OR excluded.source = ?`,
			p.Host, p.Profile, p.Source, p.Software, micros(p.UpdatedAt), SourcePinned, SourcePinned)
		if err != nil {
			return fmt.Errorf("store: signature profile of host %s: %w", p.Host, err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n > 0, err
}

const signatureProfileColumns = `host, profile, source, software, updated_at`

func scanSignatureProfile(sc interface{ Scan(...any) error }) (SignatureProfile, error) {
	var (
		p  SignatureProfile
		at int64
	)
	if err := sc.Scan(&p.Host, &p.Profile, &p.Source, &p.Software, &at); err != nil {
		return SignatureProfile{}, err
	}
	p.UpdatedAt = fromMicros(at)
	return p, nil
}

// GetSignatureProfile implements SignatureProfiles.
func (s *sqlStore) GetSignatureProfile(ctx context.Context, host string) (SignatureProfile, error) {
	p, err := scanSignatureProfile(s.queryRow(ctx, `SELECT `+signatureProfileColumns+` FROM signature_profiles WHERE host = ?`, strings.ToLower(host)))
	if err != nil {
		return SignatureProfile{}, notFound(err, "signature profile of host "+host)
	}
	return p, nil
}

// ListSignatureProfiles implements SignatureProfiles.
func (s *sqlStore) ListSignatureProfiles(ctx context.Context) ([]SignatureProfile, error) {
	rows, err := s.query(ctx, `SELECT `+signatureProfileColumns+` FROM signature_profiles ORDER BY host`)
	if err != nil {
		return nil, fmt.Errorf("store: list signature profiles: %w", err)
	}
	defer rows.Close()
	var out []SignatureProfile
	for rows.Next() {
		p, err := scanSignatureProfile(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list signature profiles: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// UnpinSignatureProfiles implements SignatureProfiles.
func (s *sqlStore) UnpinSignatureProfiles(ctx context.Context, keep []string) ([]string, error) {
	keepSet := make(map[string]bool, len(keep))
	for _, h := range keep {
		keepSet[strings.ToLower(h)] = true
	}
	var removed []string
	err := s.inTx(ctx, func(t tx) error {
		removed = removed[:0]
		rows, err := t.query(ctx, `SELECT host FROM signature_profiles WHERE source = ?`, SourcePinned)
		if err != nil {
			return fmt.Errorf("store: pinned signature profiles: %w", err)
		}
		var stale []string
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return fmt.Errorf("store: pinned signature profiles: %w", err)
			}
			if !keepSet[h] {
				stale = append(stale, h)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: pinned signature profiles: %w", err)
		}
		for _, h := range stale {
			if _, err := t.exec(ctx, `DELETE FROM signature_profiles WHERE host = ? AND source = ?`, h, SourcePinned); err != nil {
				return fmt.Errorf("store: unpin signature profile of host %s: %w", h, err)
			}
			removed = append(removed, h)
		}
		return nil
	})
	return removed, err
}
