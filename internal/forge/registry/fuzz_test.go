package registry

import (
	"errors"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"strings"
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
)

// FuzzWebhookSignature: with an arbitrary authentication header, a webhook is accepted
// only when the header is exactly what the forge would send for this body and secret.
func FuzzWebhookSignature(f *testing.F) {
	body := forgetest.Read(f, "github/release_published.json")
	f.Add(uint8(0), string(forgetest.Secret))
	f.Add(uint8(1), forgetest.HMACHex(body, forgetest.Secret))
	f.Add(uint8(2), strings.ToUpper(forgetest.HMACHex(body, forgetest.Secret)))
	f.Add(uint8(3), "sha256="+forgetest.HMACHex(body, forgetest.Secret))
	f.Add(uint8(3), "sha256= "+forgetest.HMACHex(body, forgetest.Secret))
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		forges := []fedv1.SourceType{fedv1.SourceGitLab, fedv1.SourceGitea, fedv1.SourceForgejo, fedv1.SourceGitHub}
		srcType := forges[int(which)%len(forges)]
		h := forgetest.SignedHeaders(srcType, "release", body, forgetest.Secret)
		var header, valid string
		switch srcType {
		case fedv1.SourceGitLab:
			h.Set(forgetest.HeaderGitLabEvent, "Release Hook")
			header, valid = forgetest.HeaderGitLabToken, string(forgetest.Secret)
		case fedv1.SourceGitea:
			header, valid = forgetest.HeaderGiteaSignature, forgetest.HMACHex(body, forgetest.Secret)
		case fedv1.SourceForgejo:
			h.Del(forgetest.HeaderGiteaSignature)
			header, valid = forgetest.HeaderForgejoSignature, forgetest.HMACHex(body, forgetest.Secret)
		case fedv1.SourceGitHub:
			header, valid = forgetest.HeaderGitHubSignature, "sha256="+forgetest.HMACHex(body, forgetest.Secret)
		}
		h.Set(header, value)
		_, err := ParseWebhook(srcType, h, body, forgetest.Secret)
		accepted := !errors.Is(err, forge.ErrUnauthorized)
		// What each forge's check must accept: GitLab the exact token; Gitea and Forgejo
		// the hex HMAC in any case, surrounding space ignored; GitHub the same after the
		// literal "sha256=" prefix.
		var want bool
		switch srcType {
		case fedv1.SourceGitLab:
			want = value == valid
		case fedv1.SourceGitea, fedv1.SourceForgejo:
			want = strings.EqualFold(strings.TrimSpace(value), valid)
		case fedv1.SourceGitHub:
			rest, ok := strings.CutPrefix(value, "sha256=")
			want = ok && strings.EqualFold(strings.TrimSpace(rest), strings.TrimPrefix(valid, "sha256="))
		}
		if accepted != want {
			t.Fatalf("%s %s %q: accepted=%t, want %t (%v)", srcType, header, value, accepted, want, err)
		}
	})
}
