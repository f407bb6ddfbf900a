package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/urls"
	"github.com/fedforge/fedforge/internal/version"
)

// webFinger answers acct:user@host and actor URL resources for this server's actors.
func (d *documents) webFinger(ctx context.Context, r activitypub.Resource) (*activitypub.JRD, error) {
	fs, err := d.actors.server(ctx)
	if errors.Is(err, errNoServer) {
		return nil, activitypub.ErrNoSuchResource
	} else if err != nil {
		return nil, err
	}
	host := strings.ToLower(fs.Spec.Host)
	var username string
	switch r.Scheme {
	case "acct":
		if r.Host != host {
			return nil, activitypub.ErrNoSuchResource
		}
		username = r.User
	default:
		u, err := url.Parse(r.URL)
		if err != nil || strings.ToLower(u.Host) != host {
			return nil, activitypub.ErrNoSuchResource
		}
		name, ok := strings.CutPrefix(u.EscapedPath(), "/actors/")
		if !ok || name == "" || strings.Contains(name, "/") {
			return nil, activitypub.ErrNoSuchResource
		}
		if username, err = url.PathUnescape(name); err != nil {
			return nil, activitypub.ErrNoSuchResource
		}
		// The id must be exactly ours (scheme included), not merely on our host.
		if urls.ForActor(fs.BaseURL(), username).ID != r.URL {
			return nil, activitypub.ErrNoSuchResource
		}
	}
	a, err := d.actors.byUsername(ctx, username, r.Scheme == "acct")
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, activitypub.ErrNoSuchResource
	}
	id := urls.ForActor(fs.BaseURL(), a.Spec.PreferredUsername).ID
	jrd := activitypub.NewActorJRD(a.Spec.PreferredUsername, fs.Spec.Host, id, a.Spec.URL)
	// Our own subscribe template, for the reverse direction (remote_follow.go).
	jrd.Links = append(jrd.Links, activitypub.Link{Rel: SubscribeRel, Template: fs.BaseURL() + "/authorize_interaction?uri={uri}"})
	return jrd, nil
}

// hostMeta serves host-meta (XRD) and host-meta.json for the server's base URL.
func (d *documents) hostMeta(w http.ResponseWriter, r *http.Request) {
	fs, ok := d.serverOr503(w, r)
	if !ok {
		return
	}
	activitypub.HostMetaHandler(fs.BaseURL()).ServeHTTP(w, r)
}

// nodeInfoDiscovery serves /.well-known/nodeinfo.
func (d *documents) nodeInfoDiscovery(w http.ResponseWriter, r *http.Request) {
	fs, ok := d.serverOr503(w, r)
	if !ok {
		return
	}
	activitypub.NodeInfoDiscoveryHandler(fs.BaseURL()).ServeHTTP(w, r)
}

// nodeInfo reports software fedforge at this build's version and the number of actors.
func (d *documents) nodeInfo(ctx context.Context) (activitypub.NodeInfo, error) {
	all, err := d.actors.list(ctx, indexActorServer, d.actors.srv.Name)
	if err != nil {
		return activitypub.NodeInfo{}, err
	}
	return activitypub.NodeInfo{
		Software: activitypub.NodeInfoSoftware{
			Name:       "fedforge",
			Version:    version.Version,
			Repository: "https://github.com/fedforge/fedforge",
			Homepage:   "https://github.com/fedforge/fedforge",
		},
		Usage: activitypub.NodeInfoUsage{Users: activitypub.NodeInfoUsers{
			Total: len(all), ActiveMonth: len(all), ActiveHalfyear: len(all),
		}},
		Metadata: map[string]any{"nodeName": d.actors.srv.Name},
	}, nil
}

// serverOr503 reads the FederationServer, answering 503 when it is not in the cache yet.
func (d *documents) serverOr503(w http.ResponseWriter, r *http.Request) (*fedv1.FederationServer, bool) {
	fs, err := d.actors.server(r.Context())
	if err != nil {
		w.Header().Set("Retry-After", retryAfterSeconds)
		http.Error(w, "server not configured yet", http.StatusServiceUnavailable)
		return nil, false
	}
	return fs, true
}
