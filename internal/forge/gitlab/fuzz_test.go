package gitlab_test

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
//	go test ./internal/forge/gitlab/ -run '^$' -fuzz Fuzz -fuzztime 60s

func FuzzGitLabWebhook(f *testing.F) { rendertest.FuzzWebhooks(f, fedv1.SourceGitLab) }
