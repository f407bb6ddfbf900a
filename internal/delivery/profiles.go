package delivery

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// routeSignatureProfile serves the per-host signature profiles to delivery Jobs, so that
// a Job signs each host as the server learnt to (and as the spec pins), and what a Job
// learns is kept.
const routeSignatureProfile = "/signature-profile"

// StoreProfiles adapts the store's signature-profile table to the outbound client
// (activitypub.ProfileStore): the server's client and a Job leasing from PostgreSQL use
// it; a Job on the queue endpoint uses RemoteQueue, which the server answers from it.
type StoreProfiles struct {
	S store.SignatureProfiles
}

var (
	_ activitypub.ProfileStore = StoreProfiles{}
	_ activitypub.ProfileStore = (*RemoteQueue)(nil)
)

// LoadSignatureProfile implements activitypub.ProfileStore.
func (p StoreProfiles) LoadSignatureProfile(ctx context.Context, host string) (activitypub.HostProfile, bool, error) {
	sp, err := p.S.GetSignatureProfile(ctx, host)
	if errors.Is(err, store.ErrNotFound) {
		return activitypub.HostProfile{}, false, nil
	}
	if err != nil {
		return activitypub.HostProfile{}, false, err
	}
	return fromStoreProfile(sp), true, nil
}

// SaveSignatureProfile implements activitypub.ProfileStore; a pinned row stays.
func (p StoreProfiles) SaveSignatureProfile(ctx context.Context, hp activitypub.HostProfile) error {
	_, err := p.S.PutSignatureProfile(ctx, toStoreProfile(hp))
	return err
}

func fromStoreProfile(sp store.SignatureProfile) activitypub.HostProfile {
	return activitypub.HostProfile{Host: sp.Host, Profile: activitypub.SignatureProfile(sp.Profile), Source: sp.Source, Software: sp.Software, UpdatedAt: sp.UpdatedAt}
}

func toStoreProfile(hp activitypub.HostProfile) store.SignatureProfile {
	return store.SignatureProfile{Host: hp.Host, Profile: string(hp.Profile), Source: hp.Source, Software: hp.Software, UpdatedAt: hp.UpdatedAt}
}

// profileBody is the JSON of one profile on the queue endpoint.
type profileBody struct {
	Host     string `json:"host"`
	Profile  string `json:"profile"`
	Source   string `json:"source"`
	Software string `json:"software,omitempty"`
}

// signatureProfiles answers GET ?host= and POST of a profile, when the handler's queue
// is also a store of profiles (the server's store is); otherwise 404 for every host,
// which a Job reads as "unknown" and signs with the default.
func (h *queueHandler) signatureProfiles(w http.ResponseWriter, r *http.Request) {
	sps, _ := h.q.(store.SignatureProfiles)
	switch r.Method {
	case http.MethodGet:
		host := r.URL.Query().Get("host")
		if host == "" {
			writeError(w, http.StatusBadRequest, codeBadRequest, "host is required")
			return
		}
		if sps == nil {
			fail(w, store.ErrNotFound)
			return
		}
		sp, err := sps.GetSignatureProfile(r.Context(), host)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, profileBody{Host: sp.Host, Profile: sp.Profile, Source: sp.Source, Software: sp.Software})
	case http.MethodPost:
		var b profileBody
		if !decode(w, r, &b) {
			return
		}
		if b.Host == "" || !activitypub.SignatureProfile(b.Profile).Valid() || b.Source == "" || b.Source == store.SourcePinned {
			writeError(w, http.StatusBadRequest, codeBadRequest, "a learnt profile needs a host, a known profile and a source other than pinned")
			return
		}
		if sps != nil {
			if _, err := sps.PutSignatureProfile(r.Context(), store.SignatureProfile{Host: b.Host, Profile: b.Profile, Source: b.Source, Software: b.Software}); err != nil {
				fail(w, err)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// LoadSignatureProfile implements activitypub.ProfileStore over the queue endpoint.
func (q *RemoteQueue) LoadSignatureProfile(ctx context.Context, host string) (activitypub.HostProfile, bool, error) {
	var b profileBody
	err := q.call(ctx, http.MethodGet, routeSignatureProfile+"?host="+url.QueryEscape(host), nil, &b, true)
	if errors.Is(err, store.ErrNotFound) {
		return activitypub.HostProfile{}, false, nil
	}
	if err != nil {
		return activitypub.HostProfile{}, false, err
	}
	return activitypub.HostProfile{Host: b.Host, Profile: activitypub.SignatureProfile(b.Profile), Source: b.Source, Software: b.Software}, true, nil
}

// SaveSignatureProfile implements activitypub.ProfileStore over the queue endpoint.
func (q *RemoteQueue) SaveSignatureProfile(ctx context.Context, hp activitypub.HostProfile) error {
	return q.call(ctx, http.MethodPost, routeSignatureProfile, profileBody{Host: hp.Host, Profile: string(hp.Profile), Source: hp.Source, Software: hp.Software}, nil, true)
}
