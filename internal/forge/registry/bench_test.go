package registry

import (
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"testing"
)

// Run with
//
//	go test ./internal/forge/registry/ -run '^$' -bench . -benchtime 1s -count 1

// BenchmarkParseWebhook: authentication and parsing of one real delivery per forge.
func BenchmarkParseWebhook(b *testing.B) {
	for _, name := range []string{"gitlab release", "gitea release published", "github release published", "gitlab push", "github pull request opened"} {
		tc := forgetest.Payloads[name]
		body := forgetest.Read(b, tc.File)
		h := forgetest.SignedHeaders(tc.Forge, tc.Event, body, forgetest.Secret)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseWebhook(tc.Forge, h, body, forgetest.Secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
