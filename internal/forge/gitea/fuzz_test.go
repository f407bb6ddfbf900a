package gitea_test

import (
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/render/rendertest"
)

// Bodies are signed with the right secret inside the target, so the fuzzer explores the
// payload parser rather than bouncing off authentication (registry's
// FuzzWebhookSignature attacks authentication itself). Seeds are the real payloads in
// internal/forge/testdata. Run one with, for example,
//
//	go test ./internal/forge/gitea/ -run '^$' -fuzz '^FuzzGiteaWebhook$' -fuzztime 60s

func FuzzGiteaWebhook(f *testing.F) { rendertest.FuzzWebhooks(f, fedv1.SourceGitea) }

func FuzzForgejoWebhook(f *testing.F) { rendertest.FuzzWebhooks(f, fedv1.SourceForgejo) }
