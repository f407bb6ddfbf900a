package sources

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"net/http"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// MaxBodyBytes bounds a webhook or outbox body. GitLab caps its own payloads well below
// this, GitHub at 25 MB but only for huge pushes, which we do not need in full.
const MaxBodyBytes = 1 << 20

// maxJSONDepth bounds the nesting of payloads we decode; forge payloads stay under 10.
const maxJSONDepth = 32

// ParseWebhook verifies a webhook with the forge's own authentication and turns it into
// an Event. It is the one entry point the HTTP handler and the fuzzers use. secret is
// the shared secret from the source's Secret; surrounding whitespace is ignored because
// Secrets made with `kubectl create secret --from-file` often end in a newline, which
// the forge's settings page never contains.
func ParseWebhook(srcType fedv1.SourceType, h http.Header, body, secret []byte) (*forge.Event, error) {
	secret = bytes.TrimSpace(secret)
	if len(secret) == 0 {
		// Fail closed: a source without a secret must not accept anyone's events.
		return nil, fmt.Errorf("%w: %s source has no secret configured", forge.ErrUnauthorized, srcType)
	}
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes", forge.ErrTooLarge, len(body))
	}
	switch srcType {
	case fedv1.SourceGitLab:
		return ParseGitLab(h, body, secret)
	case fedv1.SourceGitea:
		return ParseGitea(h, body, secret)
	case fedv1.SourceForgejo:
		return ParseForgejo(h, body, secret)
	case fedv1.SourceGitHub:
		return ParseGitHub(h, body, secret)
	}
	return nil, fmt.Errorf("%w: source type %q does not receive webhooks", forge.ErrIgnoredEvent, srcType)
}

// verifyToken compares a token sent in clear (GitLab's X-Gitlab-Token, a bearer token)
// with the secret in constant time. Both sides are hashed first so that neither the
// content nor the length of the secret leaks through timing.
func verifyToken(got string, secret []byte) bool {
	if got == "" {
		return false
	}
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256(secret)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// verifyHMAC checks a hex HMAC-SHA256 of body (Gitea, Forgejo, GitHub after its
// "sha256=" prefix) in constant time.
func verifyHMAC(sigHex string, body, secret []byte) bool {
	sigHex = strings.TrimSpace(sigHex)
	if sigHex == "" {
		return false
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}

// decodePayload decodes a forge payload into v after bounding its nesting, so that a
// hostile body costs at most one pass of the decoder.
func decodePayload(body []byte, v any) error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: body is not a JSON object", forge.ErrMalformed)
	}
	if d := activitypub.JSONDepth(b); d > maxJSONDepth {
		return fmt.Errorf("%w: JSON nested %d levels deep", forge.ErrMalformed, d)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", forge.ErrMalformed, err)
	}
	return nil
}
