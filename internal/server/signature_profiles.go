package server

import (
	"context"
	"strings"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// pinnedProfile is the client's view of spec.signatures.pins: read from the informer
// cache on every signed request, so a pin takes effect in this process at once.
func (ac *actors) pinnedProfile(host string) (activitypub.SignatureProfile, bool) {
	fs, err := ac.server(context.Background())
	if err != nil {
		return "", false
	}
	return pinOf(fs, host)
}

func pinOf(fs *fedv1.FederationServer, host string) (activitypub.SignatureProfile, bool) {
	if fs.Spec.Signatures == nil {
		return "", false
	}
	for _, p := range fs.Spec.Signatures.Pins {
		if strings.EqualFold(p.Host, host) {
			return activitypub.SignatureProfile(p.Profile), true
		}
	}
	return "", false
}

// syncSignaturePins writes the spec's pins into the store's signature profiles (source
// pinned), where delivery Jobs and `fedforge signatures` read them, and deletes the
// pinned rows of hosts no longer pinned so that those are learnt again. It runs at start
// and with every status report.
func (s *Server) syncSignaturePins(ctx context.Context) error {
	if !s.cache.WaitForCacheSync(ctx) {
		return nil
	}
	every := s.opts.StatusInterval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.writeSignaturePins(ctx); err != nil && ctx.Err() == nil {
			s.fed.log.Info("writing signature pins to the store failed; retrying", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Server) writeSignaturePins(ctx context.Context) error {
	fs, err := s.fed.actors.server(ctx)
	if err != nil {
		return nil // no server (yet): nothing pinned
	}
	var keep []string
	if fs.Spec.Signatures != nil {
		for _, p := range fs.Spec.Signatures.Pins {
			host := strings.ToLower(p.Host)
			keep = append(keep, host)
			cur, err := s.opts.Store.GetSignatureProfile(ctx, host)
			if err == nil && cur.Source == store.SourcePinned && cur.Profile == string(p.Profile) {
				continue
			}
			if _, err := s.opts.Store.PutSignatureProfile(ctx, store.SignatureProfile{
				Host: host, Profile: string(p.Profile), Source: store.SourcePinned, Software: cur.Software, UpdatedAt: s.opts.Now().UTC(),
			}); err != nil {
				return err
			}
		}
	}
	removed, err := s.opts.Store.UnpinSignatureProfiles(ctx, keep)
	for _, h := range removed {
		s.fed.client.ForgetProfile(h)
		s.fed.log.Info("signature pin removed; the profile of this host is learnt again", "host", h)
	}
	return err
}
