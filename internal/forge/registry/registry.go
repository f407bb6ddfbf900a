// Package registry maps each source type to its forge adapter, so that code receiving
// a delivery (the webhook handler, the fuzzers) asks for "the Reader of this source's
// type" instead of switching over forges. A new forge is added here and nowhere else
// outside its own package. Writers (forge.Writer) are not in it yet: they need a forge
// access configuration to be built, and phase 2 adds a constructor per source type here.
package registry

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
	"github.com/fedforge/fedforge/internal/forge/github"
	"github.com/fedforge/fedforge/internal/forge/gitlab"
	"github.com/fedforge/fedforge/internal/forge/webhook"
)

// Registry maps a source type to the adapter that reads its webhooks. It is built once
// and only read afterwards, so it needs no lock.
type Registry struct {
	readers map[fedv1.SourceType]forge.Reader
}

// New builds a registry of readers; two readers of one type are a programming error.
func New(readers ...forge.Reader) (*Registry, error) {
	r := &Registry{readers: make(map[fedv1.SourceType]forge.Reader, len(readers))}
	for _, rd := range readers {
		if _, dup := r.readers[rd.Type()]; dup {
			return nil, fmt.Errorf("registry: two readers for source type %s", rd.Type())
		}
		r.readers[rd.Type()] = rd
	}
	return r, nil
}

// Default holds every forge adapter Fedforge ships. Feeds are not in it: they are
// polled (internal/forge/feed), never delivered.
var Default = must(New(gitlab.Adapter{}, gitea.Gitea{}, gitea.Forgejo{}, github.Adapter{}))

func must(r *Registry, err error) *Registry {
	if err != nil {
		panic(err)
	}
	return r
}

// Reader returns the adapter for a source type, and whether there is one.
func (r *Registry) Reader(t fedv1.SourceType) (forge.Reader, bool) {
	rd, ok := r.readers[t]
	return rd, ok
}

// Types lists the source types that receive webhooks, sorted, for docs and errors.
func (r *Registry) Types() []fedv1.SourceType {
	out := make([]fedv1.SourceType, 0, len(r.readers))
	for t := range r.readers {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// ParseWebhook verifies a webhook with the forge's own authentication and turns it into
// an Event. It is the one entry point the HTTP handler and the fuzzers use. secret is
// the shared secret from the source's Secret; surrounding whitespace is ignored because
// Secrets made with `kubectl create secret --from-file` often end in a newline, which
// the forge's settings page never contains.
func (r *Registry) ParseWebhook(srcType fedv1.SourceType, h http.Header, body, secret []byte) (*forge.Event, error) {
	secret = bytes.TrimSpace(secret)
	if len(secret) == 0 {
		// Fail closed: a source without a secret must not accept anyone's events.
		return nil, fmt.Errorf("%w: %s source has no secret configured", forge.ErrUnauthorized, srcType)
	}
	if len(body) > webhook.MaxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes", forge.ErrTooLarge, len(body))
	}
	rd, ok := r.readers[srcType]
	if !ok {
		return nil, fmt.Errorf("%w: source type %q does not receive webhooks", forge.ErrIgnoredEvent, srcType)
	}
	return rd.ParseWebhook(h, body, secret)
}

// ParseWebhook is Default.ParseWebhook.
func ParseWebhook(srcType fedv1.SourceType, h http.Header, body, secret []byte) (*forge.Event, error) {
	return Default.ParseWebhook(srcType, h, body, secret)
}
