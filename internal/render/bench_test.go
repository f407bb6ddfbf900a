package render_test

import (
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/registry"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/render/rendertest"
	"testing"
)

// Run with
//
//	go test ./internal/render/ -run '^$' -bench . -benchtime 1s -count 1

// BenchmarkRender: an event to its activities (HTML, sanitising, JSON encoding).
func BenchmarkRender(b *testing.B) {
	for _, name := range []string{"gitlab release", "gitlab push", "github issue opened"} {
		tc := forgetest.Payloads[name]
		body := forgetest.Read(b, tc.File)
		ev, err := registry.ParseWebhook(tc.Forge, forgetest.SignedHeaders(tc.Forge, tc.Event, body, forgetest.Secret), body, forgetest.Secret)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := render.Render(ev, render.Target{ActorID: rendertest.ActorID, PushNote: true, Now: rendertest.Now}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
