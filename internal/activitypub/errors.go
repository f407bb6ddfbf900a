package activitypub

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies a protocol failure so that callers can count and log failures by cause
// without matching on error strings.
type Kind string

// The kinds of protocol failure; each maps to one HTTP status through Error.Status.
const (
	KindMalformed      Kind = "malformed"       // unparsable header, document or resource (400)
	KindUnsigned       Kind = "unsigned"        // no signature where one is required (401)
	KindExpired        Kind = "expired"         // signature outside its validity window (401)
	KindReplayed       Kind = "replayed"        // the same signature seen inside its window (401)
	KindDigestMismatch Kind = "digest-mismatch" // body does not match Digest/Content-Digest (401)
	KindBadSignature   Kind = "bad-signature"   // cryptographic verification failed (401)
	KindWeakSignature  Kind = "weak-signature"  // required components not covered (401)
	KindUnknownKey     Kind = "unknown-key"     // keyId cannot be fetched or parsed (401)
	KindWrongOwner     Kind = "wrong-owner"     // key does not belong to the claimed actor (401)
	KindForbidden      Kind = "forbidden"       // SSRF target or otherwise refused peer (403)
	KindTooLarge       Kind = "too-large"       // body over the size cap (413)
	KindUnsupported    Kind = "unsupported"     // algorithm or component we do not implement (400)
	KindRemote         Kind = "remote"          // the remote answered with a failure status (502)
	KindNotFound       Kind = "not-found"       // the remote object or resource does not exist (404)
)

// Error is the one error type for remote input: it names the remote host so that policy and
// logs can attribute a failure, and it carries the HTTP status the inbox should answer with.
// Use errors.As to get it from any error this package returns.
type Error struct {
	Kind   Kind   // why it failed
	Host   string // the remote host the input came from or pointed at ("" if unknown)
	Status int    // the HTTP status a handler should answer with
	Err    error  // the underlying cause, if any
	Msg    string // a short human explanation
	// RemoteStatus is the status a remote server answered with, for KindRemote.
	RemoteStatus int
}

// Error formats the failure with its host and kind so that log lines are self-explaining.
func (e *Error) Error() string {
	s := "activitypub: " + string(e.Kind)
	if e.Host != "" {
		s += " from " + e.Host
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, ErrReplayed) and friends match by kind, whatever the host.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) && t.Host == "" && t.Msg == "" && t.Err == nil {
		return t.Kind == e.Kind
	}
	return false
}

// Sentinels for errors.Is: they match any *Error of the same kind.
var (
	ErrMalformed      = &Error{Kind: KindMalformed, Status: http.StatusBadRequest}
	ErrUnsigned       = &Error{Kind: KindUnsigned, Status: http.StatusUnauthorized}
	ErrExpired        = &Error{Kind: KindExpired, Status: http.StatusUnauthorized}
	ErrReplayed       = &Error{Kind: KindReplayed, Status: http.StatusUnauthorized}
	ErrDigestMismatch = &Error{Kind: KindDigestMismatch, Status: http.StatusUnauthorized}
	ErrBadSignature   = &Error{Kind: KindBadSignature, Status: http.StatusUnauthorized}
	ErrWeakSignature  = &Error{Kind: KindWeakSignature, Status: http.StatusUnauthorized}
	ErrUnknownKey     = &Error{Kind: KindUnknownKey, Status: http.StatusUnauthorized}
	ErrWrongOwner     = &Error{Kind: KindWrongOwner, Status: http.StatusUnauthorized}
	ErrForbidden      = &Error{Kind: KindForbidden, Status: http.StatusForbidden}
	ErrTooLarge       = &Error{Kind: KindTooLarge, Status: http.StatusRequestEntityTooLarge}
	ErrUnsupported    = &Error{Kind: KindUnsupported, Status: http.StatusBadRequest}
	ErrRemote         = &Error{Kind: KindRemote, Status: http.StatusBadGateway}
	ErrNotFound       = &Error{Kind: KindNotFound, Status: http.StatusNotFound}
)

var kindStatus = map[Kind]int{
	KindMalformed: 400, KindUnsigned: 401, KindExpired: 401, KindReplayed: 401,
	KindDigestMismatch: 401, KindBadSignature: 401, KindWeakSignature: 401,
	KindUnknownKey: 401, KindWrongOwner: 401, KindForbidden: 403, KindTooLarge: 413,
	KindUnsupported: 400, KindRemote: 502, KindNotFound: 404,
}

// newErr builds an *Error with the status that belongs to its kind.
func newErr(kind Kind, host string, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Host: host, Status: kindStatus[kind], Err: cause, Msg: fmt.Sprintf(format, args...)}
}

// withHost fills in the host of an *Error that does not name one yet, so that low-level
// parsers need not know where their input came from.
func withHost(err error, host string) error {
	var e *Error
	if errors.As(err, &e) && e.Host == "" {
		c := *e
		c.Host = host
		return &c
	}
	return err
}

// StatusOf returns the HTTP status an inbound handler should answer for err: the status
// of an *Error in the chain, or 500 for anything else.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Status != 0 {
		return e.Status
	}
	if err == nil {
		return http.StatusOK
	}
	return http.StatusInternalServerError
}
