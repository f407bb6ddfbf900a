package sources

import (
	"bytes"
	"context"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// Benchmarks of the work a webhook or a feed poll costs the server, with the store
// stubbed out (the store's own figures are in docs/store.md). Run with
//
//	go test ./internal/sources/ -run '^$' -bench . -benchtime 1s -count 1

// BenchmarkWebhookHandler: one GitLab release delivery through the HTTP handler,
// lookup to 202: authentication, parsing and the queue's write into a real SQLite file
// (each iteration a new delivery id, so each is a new row); the worker does not run.
func BenchmarkWebhookHandler(b *testing.B) {
	actor := testActor()
	src := &actor.Spec.Sources[0]
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "fedforge.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h, err := NewWebhookHandler(WebhookConfig{
		Lookup: func(context.Context, string, string) (*fedv1.FederatedActor, *fedv1.EventSource, error) {
			return actor, src, nil
		},
		Secret:  func(context.Context, string, fedv1.SecretKeyReference) ([]byte, error) { return forgetest.Secret, nil },
		Publish: func(context.Context, *fedv1.FederatedActor, *fedv1.EventSource, []store.Activity) error { return nil },
		Base:    func(context.Context) (string, error) { return "https://fed.example", nil },
		Queue:   st,
		Metrics: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(WebhookPattern, h)
	body := forgetest.Read(b, "gitlab/release.json")
	hdr := forgetest.SignedHeaders(fedv1.SourceGitLab, "Release Hook", body, forgetest.Secret)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/hooks/releases-demo/gitlab", bytes.NewReader(body))
		req.Header = hdr.Clone()
		i++
		req.Header.Set(forgetest.HeaderGitLabUUID, strconv.Itoa(i))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatal(rec.Code)
		}
	}
}
