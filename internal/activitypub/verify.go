package activitypub

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Mastodon's time rules for signatures (app/controllers/concerns/signature_verification.rb):
// a signature is valid for DefaultValidity after its creation unless it says otherwise,
// never for more than MaxValidity, and clocks may differ by ClockSkew.
const (
	DefaultValidity = 5 * time.Minute
	ClockSkew       = time.Hour
	MaxValidity     = 12 * time.Hour
)

// Signature schemes, as recorded per host by the double-knocking client and reported by
// the verifier.
const (
	SchemeCavage  = "cavage"
	SchemeRFC9421 = "rfc9421"
)

// RemoteKey is a remote public key whose owner has been checked: the actor document at
// Owner lists the key with ID. Key is parsed once, when it is fetched.
type RemoteKey struct {
	ID        string
	Owner     string
	Key       crypto.PublicKey
	FetchedAt time.Time
}

// KeyResolver returns the verified key for a keyId. refresh asks for a refetch after a
// failed verification (key rotation); the resolver decides whether that is allowed yet.
// KeyCache implements it.
type KeyResolver interface {
	ResolveKey(ctx context.Context, keyID string, refresh bool) (*RemoteKey, error)
}

// Verified describes an accepted request signature: who signed, with what, and when.
// The inbox compares Owner with the activity's actor (CheckActor).
type Verified struct {
	Scheme    string // SchemeCavage or SchemeRFC9421
	Algorithm string
	KeyID     string
	Owner     string // the actor that owns the key
	Created   time.Time
	Expires   time.Time
}

// CheckActor refuses an activity whose actor is not the key's owner, Mastodon's keyId
// owner rule, with a 401 that names the signer's host.
func (v *Verified) CheckActor(actor string) error {
	if actor == v.Owner {
		return nil
	}
	return newErr(KindWrongOwner, hostOf(v.KeyID), nil, "activity actor %q is not the key owner %q", actor, v.Owner)
}

// Verifier checks inbound request signatures the way Mastodon does (both schemes,
// required components, time window, digest) and adds replay detection. It is safe for
// concurrent use.
type Verifier struct {
	Keys   KeyResolver
	Replay *ReplayCache // nil disables replay detection
	// Now returns the current time; nil means time.Now. Tests pin it.
	Now func() time.Time
	// Origin returns the public base URL (scheme://host) of the server the requests are
	// addressed to; RFC 9421's @target-uri, @authority and @scheme are checked against it
	// (Message.Origin). A server behind a TLS-terminating Ingress sees http while peers sign
	// https; the configured base URL is the truth, forwarded headers are not trusted
	// (docs/decisions.md). nil derives them from the request.
	Origin func(ctx context.Context) (*url.URL, error)
}

// NewVerifier returns a Verifier with a replay cache of the given capacity.
func NewVerifier(keys KeyResolver, replayCapacity int) *Verifier {
	return &Verifier{Keys: keys, Replay: NewReplayCache(replayCapacity)}
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func hostOf(iri string) string {
	u, err := url.Parse(iri)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func remoteHost(req *http.Request) string {
	h, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return h
}

// VerifyRequest verifies req (with its already read body, which the caller bounds) and
// returns who signed it. RFC 9421 is used when Signature-Input is present, draft-cavage
// otherwise. Every failure is an *Error carrying the signer's host and a 400/401 status.
func (v *Verifier) VerifyRequest(ctx context.Context, req *http.Request, body []byte) (*Verified, error) {
	if req.Header.Get("Signature-Input") != "" {
		return v.verifyRFC9421(ctx, req, body)
	}
	h := req.Header.Get("Signature")
	if h == "" {
		if a := req.Header.Get("Authorization"); len(a) > 10 && strings.EqualFold(a[:10], "Signature ") {
			h = a[10:]
		}
	}
	if h == "" {
		return nil, newErr(KindUnsigned, remoteHost(req), nil, "request is not signed")
	}
	return v.verifyCavage(ctx, req, body, h)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (v *Verifier) verifyCavage(ctx context.Context, req *http.Request, body []byte, header string) (*Verified, error) {
	sig, err := ParseCavageSignature(header)
	if err != nil {
		return nil, withHost(err, remoteHost(req))
	}
	host := hostOf(sig.KeyID)
	if host == "" {
		return nil, newErr(KindMalformed, remoteHost(req), nil, "keyId %q is not a URL", sig.KeyID)
	}
	hs := sig.Headers
	switch {
	case !contains(hs, "date") && !contains(hs, "(created)"):
		return nil, newErr(KindWeakSignature, host, nil, "date or (created) must be signed")
	case !contains(hs, "(request-target)") && !contains(hs, "digest"):
		return nil, newErr(KindWeakSignature, host, nil, "(request-target) or digest must be signed")
	case req.Method == http.MethodGet && !contains(hs, "host"):
		return nil, newErr(KindWeakSignature, host, nil, "host must be signed on GET")
	case req.Method == http.MethodPost && !contains(hs, "digest"):
		return nil, newErr(KindWeakSignature, host, nil, "digest must be signed on POST")
	case contains(hs, "(created)") && sig.Algorithm != AlgHS2019:
		return nil, newErr(KindMalformed, host, nil, "(created) is only valid with hs2019")
	}
	if contains(hs, "digest") {
		if err := VerifyDigest(req.Header.Get("Digest"), body); err != nil {
			return nil, withHost(err, host)
		}
	}
	var created, expires time.Time
	if sig.Created != 0 {
		created = time.Unix(sig.Created, 0)
	} else if d := req.Header.Get("Date"); d != "" {
		if created, err = http.ParseTime(d); err != nil {
			return nil, newErr(KindMalformed, host, err, "Date header")
		}
	}
	if sig.Expires != 0 {
		expires = time.Unix(sig.Expires, 0)
	}
	if expires, err = v.checkWindow(host, created, expires); err != nil {
		return nil, err
	}
	ss, err := CavageSigningString(req, hs, sig.Created, sig.Expires)
	if err != nil {
		return nil, withHost(err, host)
	}
	key, err := v.verifyWithKey(ctx, sig.KeyID, func(k *RemoteKey) error {
		return verifyCavage(sig.Algorithm, k.Key, []byte(ss), sig.Signature)
	})
	if err != nil {
		return nil, withHost(err, host)
	}
	if err := v.checkReplay(host, sig.Signature, expires); err != nil {
		return nil, err
	}
	return &Verified{Scheme: SchemeCavage, Algorithm: sig.Algorithm, KeyID: sig.KeyID, Owner: key.Owner, Created: created, Expires: expires}, nil
}

func (v *Verifier) verifyRFC9421(ctx context.Context, req *http.Request, body []byte) (*Verified, error) {
	sigs, err := ParseRFC9421(strings.Join(req.Header.Values("Signature-Input"), ", "), strings.Join(req.Header.Values("Signature"), ", "))
	if err != nil {
		return nil, withHost(err, remoteHost(req))
	}
	// Like Mastodon, verify the first signature; extra ones (proxies) are not consulted.
	sig := sigs[0]
	host := hostOf(sig.KeyID)
	if host == "" {
		return nil, newErr(KindMalformed, remoteHost(req), nil, "keyid %q is not a URL", sig.KeyID)
	}
	switch {
	case sig.Created == 0:
		return nil, newErr(KindWeakSignature, host, nil, "created parameter is required")
	case !sig.HasComponent("@method"):
		return nil, newErr(KindWeakSignature, host, nil, "@method must be covered")
	case !sig.HasComponent("@target-uri"):
		return nil, newErr(KindWeakSignature, host, nil, "@target-uri must be covered")
	case req.Method == http.MethodPost && !sig.HasComponent("content-digest"):
		return nil, newErr(KindWeakSignature, host, nil, "content-digest must be covered on POST")
	}
	if sig.HasComponent("content-digest") {
		if err := VerifyContentDigest(req.Header.Get("Content-Digest"), body); err != nil {
			return nil, withHost(err, host)
		}
	}
	var expires time.Time
	if sig.Expires != 0 {
		expires = time.Unix(sig.Expires, 0)
	}
	created := time.Unix(sig.Created, 0)
	if expires, err = v.checkWindow(host, created, expires); err != nil {
		return nil, err
	}
	msg := Message{Request: req}
	if v.Origin != nil {
		if msg.Origin, err = v.Origin(ctx); err != nil {
			return nil, fmt.Errorf("activitypub: the public origin to verify %s's signature against: %w", host, err)
		}
	}
	base, err := sig.SignatureBase(msg)
	if err != nil {
		return nil, withHost(err, host)
	}
	key, err := v.verifyWithKey(ctx, sig.KeyID, func(k *RemoteKey) error {
		return verifyRFC9421(sig.Alg, k.Key, []byte(base), sig.Signature)
	})
	if err != nil {
		return nil, withHost(err, host)
	}
	if err := v.checkReplay(host, sig.Signature, expires); err != nil {
		return nil, err
	}
	alg := sig.Alg
	if alg == "" {
		alg = rfc9421AlgOfPublic(key.Key) // the signer left it to the key (RFC 9421 section 3.3.7)
	}
	return &Verified{Scheme: SchemeRFC9421, Algorithm: alg, KeyID: sig.KeyID, Owner: key.Owner, Created: created, Expires: expires}, nil
}

// checkWindow applies Mastodon's matches_time_window? and returns the effective expiry.
func (v *Verifier) checkWindow(host string, created, expires time.Time) (time.Time, error) {
	if created.IsZero() {
		return time.Time{}, newErr(KindWeakSignature, host, nil, "no Date or created time")
	}
	if expires.IsZero() {
		expires = created.Add(DefaultValidity)
	}
	if limit := created.Add(MaxValidity); expires.After(limit) {
		expires = limit
	}
	now := v.now()
	if created.After(now.Add(ClockSkew)) {
		return time.Time{}, newErr(KindExpired, host, nil, "signature created %s in the future", created.Sub(now).Round(time.Second))
	}
	if now.After(expires.Add(ClockSkew)) {
		return time.Time{}, newErr(KindExpired, host, nil, "signature expired %s ago", now.Sub(expires).Round(time.Second))
	}
	return expires, nil
}

// verifyWithKey resolves the key and verifies; on a cryptographic failure it asks the
// resolver once for a fresh key (rotation) and tries again if the key changed.
func (v *Verifier) verifyWithKey(ctx context.Context, keyID string, check func(*RemoteKey) error) (*RemoteKey, error) {
	if v.Keys == nil {
		return nil, newErr(KindUnknownKey, hostOf(keyID), nil, "no key resolver configured")
	}
	key, err := v.Keys.ResolveKey(ctx, keyID, false)
	if err != nil {
		return nil, err
	}
	err = check(key)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, ErrBadSignature) {
		return nil, err
	}
	fresh, rerr := v.Keys.ResolveKey(ctx, keyID, true)
	if rerr != nil || fresh == nil || fresh == key || fresh.FetchedAt.Equal(key.FetchedAt) {
		return nil, err
	}
	if err := check(fresh); err != nil {
		return nil, err
	}
	return fresh, nil
}

func (v *Verifier) checkReplay(host string, sig []byte, expires time.Time) error {
	if v.Replay == nil {
		return nil
	}
	if v.Replay.Seen(string(sig), expires.Add(ClockSkew), v.now()) {
		return newErr(KindReplayed, host, nil, "signature already used")
	}
	return nil
}
