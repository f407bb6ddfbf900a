package store

import (
	"context"
	"errors"
	"testing"
)

func TestSignatureProfilesConformance(t *testing.T) {
	ctx := context.Background()
	runSuite(t, map[string]storeTest{
		"learnt profiles replace each other, by host, case-insensitively": func(t *testing.T, s Store, _ string) {
			if _, err := s.GetSignatureProfile(ctx, "peer.example"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown host: %v, want ErrNotFound", err)
			}
			for _, p := range []SignatureProfile{
				{Host: "Peer.Example", Profile: "cavage", Source: "knock", UpdatedAt: t0},
				{Host: "peer.example", Profile: "rfc9421-rsa", Source: "accept-signature", Software: "fedify/2.3.6", UpdatedAt: t0.Add(1)},
			} {
				if ok, err := s.PutSignatureProfile(ctx, p); err != nil || !ok {
					t.Fatalf("put %+v: %v %v", p, ok, err)
				}
			}
			got, err := s.GetSignatureProfile(ctx, "PEER.example")
			if err != nil || got.Profile != "rfc9421-rsa" || got.Source != "accept-signature" || got.Software != "fedify/2.3.6" || !got.UpdatedAt.Equal(t0.Add(1).Truncate(1000)) {
				t.Fatalf("got %+v %v", got, err)
			}
		},
		"a pinned row is kept against learning and replaced by a pin": func(t *testing.T, s Store, _ string) {
			mustPut := func(p SignatureProfile, want bool) {
				t.Helper()
				if ok, err := s.PutSignatureProfile(ctx, p); err != nil || ok != want {
					t.Fatalf("put %+v: replaced %v (want %v) %v", p, ok, want, err)
				}
			}
			mustPut(SignatureProfile{Host: "pinned.example", Profile: "rfc9421-rsa", Source: SourcePinned, UpdatedAt: t0}, true)
			mustPut(SignatureProfile{Host: "pinned.example", Profile: "cavage", Source: "knock", UpdatedAt: t0}, false)
			if got, _ := s.GetSignatureProfile(ctx, "pinned.example"); got.Profile != "rfc9421-rsa" || got.Source != SourcePinned {
				t.Fatalf("pin overwritten by learning: %+v", got)
			}
			mustPut(SignatureProfile{Host: "pinned.example", Profile: "cavage", Source: SourcePinned, UpdatedAt: t0}, true)
			mustPut(SignatureProfile{Host: "learnt.example", Profile: "cavage", Source: "knock", UpdatedAt: t0}, true)
			mustPut(SignatureProfile{Host: "other.example", Profile: "cavage", Source: SourcePinned, UpdatedAt: t0}, true)
			removed, err := s.UnpinSignatureProfiles(ctx, []string{"Pinned.Example"})
			if err != nil || len(removed) != 1 || removed[0] != "other.example" {
				t.Fatalf("unpin: %v %v", removed, err)
			}
			all, err := s.ListSignatureProfiles(ctx)
			if err != nil || len(all) != 2 || all[0].Host != "learnt.example" || all[1].Host != "pinned.example" || all[1].Profile != "cavage" {
				t.Fatalf("list: %+v %v", all, err)
			}
		},
		"an unknown profile is refused": func(t *testing.T, s Store, _ string) {
			if _, err := s.PutSignatureProfile(ctx, SignatureProfile{Host: "x.example", Profile: "hs2019", Source: "knock"}); err == nil {
				t.Fatal("profile outside the CHECK accepted")
			}
			if _, err := s.PutSignatureProfile(ctx, SignatureProfile{Host: "", Profile: "cavage", Source: "knock"}); err == nil {
				t.Fatal("empty host accepted")
			}
		},
	})
}
