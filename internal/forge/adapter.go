package forge

import (
	"net/http"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// Reader is the inbound half of a forge adapter: it turns one webhook delivery into an
// Event. Every forge Fedforge reads (internal/forge/gitlab, gitea for Gitea and
// Forgejo, github) implements it, and internal/forge/registry maps a source's type to
// its Reader, so that the webhook handler never names a forge.
type Reader interface {
	// Type is the source type this adapter reads (fedv1.SourceGitLab, ...), which is
	// also the forge's name in logs and metrics.
	Type() fedv1.SourceType
	// ParseWebhook verifies a delivery with the forge's own authentication (a token or an
	// HMAC of body under secret, compared in constant time) and parses it. It returns
	// ErrUnauthorized before looking at the payload when the proof is missing or wrong,
	// ErrIgnoredEvent for an authentic delivery Fedforge does not publish, and
	// ErrMalformed for a payload that does not hold what its event type promises.
	// Callers go through registry.ParseWebhook, which also refuses an empty secret and
	// an oversized body before any adapter runs.
	ParseWebhook(h http.Header, body, secret []byte) (*Event, error)
}
