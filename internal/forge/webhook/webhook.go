// Package webhook holds what every forge adapter needs to read a webhook safely: the
// body cap, constant-time checks of the forge's shared secret (a token sent in clear or
// an HMAC of the body), a JSON decoder that bounds nesting before it decodes, and the
// date and URL forms forges put in payloads. Adapters call these instead of writing
// their own, so that a fix to a check reaches every forge.
package webhook

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
	"net/url"
	"strings"
	"time"
)

// MaxBodyBytes bounds a webhook or outbox body. GitLab caps its own payloads well below
// this, GitHub at 25 MB but only for huge pushes, which we do not need in full.
const MaxBodyBytes = 1 << 20

// maxJSONDepth bounds the nesting of payloads we decode; forge payloads stay under 10.
const maxJSONDepth = 32

// VerifyToken compares a token sent in clear (GitLab's X-Gitlab-Token, a bearer token)
// with the secret in constant time. Both sides are hashed first so that neither the
// content nor the length of the secret leaks through timing.
func VerifyToken(got string, secret []byte) bool {
	if got == "" {
		return false
	}
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256(secret)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// VerifyHMAC checks a hex HMAC-SHA256 of body (Gitea, Forgejo, GitHub after its
// "sha256=" prefix) in constant time.
func VerifyHMAC(sigHex string, body, secret []byte) bool {
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

// DecodePayload decodes a forge payload into v after bounding its nesting, so that a
// hostile body costs at most one pass of the decoder.
func DecodePayload(body []byte, v any) error {
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

// timeLayouts are the date forms forges put in payloads: RFC 3339 (GitHub, Gitea,
// GitLab objects) and GitLab's "2020-11-02 12:55:12 UTC".
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", "2006-01-02T15:04:05"}

// ParseTime reads a forge timestamp in UTC, zero when absent or unreadable: a wrong
// date must not cost the event.
func ParseTime(s string) time.Time {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// FirstTime returns the first of the timestamps that parses.
func FirstTime(ss ...string) time.Time {
	for _, s := range ss {
		if t := ParseTime(s); !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// JoinURL appends a path and an escaped final segment to a project URL; it returns ""
// without a base, so that rendering leaves the link out rather than pointing nowhere.
func JoinURL(base, path, segment string) string {
	if base == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + path + escapeSegment(segment)
}

// escapeSegment escapes a ref for a URL path while keeping "/" (branch names such as
// feature/x appear unescaped in forge URLs).
func escapeSegment(s string) string {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
