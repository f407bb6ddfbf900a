package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/fedforge/fedforge/internal/activitypub"
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
// (indented) to w: a handle is resolved with WebFinger first; the document is fetched
// through the network guard and must be served from its own id (the provenance rule of
// FetchObject). The fetch is unsigned: the command holds no actor key, so a peer in
// authorized-fetch mode answers with what it serves to anyone (often a key stub).
func Lookup(ctx context.Context, o LookupOptions, w io.Writer) error {
	resolve, cidrs, err := parseNetwork(o.Resolve, o.AllowedCIDRs)
	if err != nil {
		return err
	}
	c := activitypub.NewClient(activitypub.ClientConfig{Version: version.Version, AllowedCIDRs: cidrs, AllowHTTP: o.AllowHTTP, Resolve: resolve})
	target := strings.TrimSpace(o.Target)
	if target == "" {
		return fmt.Errorf("lookup: give an object URL or an acct:user@host handle")
	}
	if !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "http://") {
		handle := "acct:" + strings.TrimPrefix(strings.TrimPrefix(target, "acct:"), "@")
		jrd, err := c.WebFinger(ctx, handle)
		if err != nil {
			return fmt.Errorf("lookup: WebFinger %s: %w", handle, err)
		}
		if target = jrd.SelfLink(); target == "" {
			return fmt.Errorf("lookup: WebFinger %s has no ActivityPub self link", handle)
		}
	}
	obj, err := c.FetchObject(ctx, target, nil)
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	raw, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
