package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/lookup"
	"github.com/fedforge/fedforge/internal/version"
)

// LookupOptions configure `fedforge lookup`.
type LookupOptions struct {
	// Target is an object's URL, or an actor's handle (acct:user@host, user@host, @user@host).
	Target string
	// AllowedCIDRs, AllowHTTP and Resolve configure the outbound client as the server's
	// (local setups reach peers on private addresses over plain http).
	AllowedCIDRs []string
	AllowHTTP    bool
	Resolve      []string
}

// Lookup fetches a remote actor or object as a peer would see it and writes the document
// (indented) to w, with internal/lookup: a handle is resolved with WebFinger first; the
// document is fetched through the network guard and must be served from its own id. The
// fetch is unsigned: the command holds no actor key, so a peer in authorized-fetch mode
// answers with what it serves to anyone (often a key stub). The server's lookup endpoint
// (GET /actors/{username}/lookup) signs as the actor.
func Lookup(ctx context.Context, o LookupOptions, w io.Writer) error {
	resolve, cidrs, err := parseNetwork(o.Resolve, o.AllowedCIDRs)
	if err != nil {
		return err
	}
	c := activitypub.NewClient(activitypub.ClientConfig{Version: version.Version, AllowedCIDRs: cidrs, AllowHTTP: o.AllowHTTP, Resolve: resolve})
	res, err := lookup.Resolve(ctx, c, o.Target, nil)
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	var v any
	if err := json.Unmarshal(res.Document, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
