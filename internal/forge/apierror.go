package forge

import (
	"errors"
	"fmt"
	"net/http"
)

// APIError is a forge API call that failed: the forge's host, what Fedforge was doing,
// the HTTP status (0 when no answer came: refused, timed out, a refused address) and the
// forge's own message, which becomes a condition message as it is. It never holds the
// token.
type APIError struct {
	// Host is the forge's host[:port].
	Host string
	// Op says what was attempted ("reading repository alice/repo").
	Op string
	// StatusCode is the forge's HTTP status, or 0 when it did not answer.
	StatusCode int
	// Message is the forge's error message, or the network error's.
	Message string
	// Err is the underlying error.
	Err error
}

func (e *APIError) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("forge %s: %s: %s", e.Host, e.Op, e.Message)
	}
	return fmt.Sprintf("forge %s: %s: %d %s: %s", e.Host, e.Op, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

func (e *APIError) Unwrap() error { return e.Err }

// Unauthorized says the forge refused the token itself (401): wrong, expired or revoked.
func (e *APIError) Unauthorized() bool { return e.StatusCode == http.StatusUnauthorized }

// Forbidden says the forge knows the token but it lacks a scope or a permission (403).
func (e *APIError) Forbidden() bool { return e.StatusCode == http.StatusForbidden }

// AsAPIError returns err's APIError, if it has one.
func AsAPIError(err error) (*APIError, bool) {
	var e *APIError
	ok := errors.As(err, &e)
	return e, ok
}
