// Package forgetest gives tests of forge-facing code the recorded forge payloads of
// internal/forge/testdata (real deliveries and documented examples, see its README) and
// signs them the way each forge does. It is imported only by tests.
//
// The header names are written out here rather than taken from the adapters, so that a
// typo in an adapter's header constant fails the tests instead of being shared by them.
package forgetest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// The headers forges send, written out as the forges document them (see the package
// doc for why they are not the adapters' constants).
const (
	HeaderGitLabToken      = "X-Gitlab-Token"
	HeaderGitLabEvent      = "X-Gitlab-Event"
	HeaderGitLabUUID       = "X-Gitlab-Event-UUID"
	HeaderGiteaSignature   = "X-Gitea-Signature"
	HeaderGiteaEvent       = "X-Gitea-Event"
	HeaderGiteaDelivery    = "X-Gitea-Delivery"
	HeaderForgejoSignature = "X-Forgejo-Signature"
	HeaderForgejoEvent     = "X-Forgejo-Event"
	HeaderForgejoDelivery  = "X-Forgejo-Delivery"
	HeaderGitHubSignature  = "X-Hub-Signature-256"
	HeaderGitHubEvent      = "X-GitHub-Event"
	HeaderGitHubDelivery   = "X-GitHub-Delivery"
)

// Secret is the webhook secret the tests sign with.
var Secret = []byte("s3cr3t-webhook-key")

// Read returns internal/forge/testdata/name. Tests run in their package's directory,
// so the file is found from the module root (the nearest go.mod above it), which works
// for every package that imports this one.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ModuleRoot(t), "internal", "forge", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ModuleRoot returns the directory holding go.mod above the working directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("forgetest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// HMACHex is the hex HMAC-SHA256 of body under secret, as Gitea, Forgejo and GitHub sign.
func HMACHex(body, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// SignedHeaders returns the headers a forge sends for event with body, signed with
// secret the way that forge signs.
func SignedHeaders(srcType fedv1.SourceType, event string, body, secret []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch srcType {
	case fedv1.SourceGitLab:
		h.Set(HeaderGitLabEvent, event)
		h.Set(HeaderGitLabToken, string(secret))
		h.Set(HeaderGitLabUUID, "9cc3e4e6-8c1b-4cf0-9c39-8a3e6d6bbf31")
	case fedv1.SourceGitea:
		h.Set(HeaderGiteaEvent, event)
		h.Set(HeaderGiteaSignature, HMACHex(body, secret))
		h.Set(HeaderGiteaDelivery, "f6266f16-1bf3-46a5-9ea4-602e06ead473")
	case fedv1.SourceForgejo:
		// Forgejo sends its own headers and Gitea's (docs/user/webhooks.md).
		h.Set(HeaderForgejoEvent, event)
		h.Set(HeaderGiteaEvent, event)
		h.Set(HeaderForgejoSignature, HMACHex(body, secret))
		h.Set(HeaderGiteaSignature, HMACHex(body, secret))
		h.Set(HeaderForgejoDelivery, "f6266f16-1bf3-46a5-9ea4-602e06ead473")
	case fedv1.SourceGitHub:
		h.Set(HeaderGitHubEvent, event)
		h.Set(HeaderGitHubSignature, "sha256="+HMACHex(body, secret))
		h.Set(HeaderGitHubDelivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	}
	return h
}
