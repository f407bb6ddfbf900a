package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
)

// topicReader implements sources.TopicsFunc: a source that selects by topic asks the
// forge for the topics of a repository whose creation payload lists none (Gitea copies
// a template's topics after it queued the event). The call is anonymous, through the
// outbound network guard like every forge API call, so a forge on a private address is
// reached only when the server's allowedPrivateCIDRs lists it.
type topicReader struct {
	f    *federation
	once sync.Once
	hc   *http.Client
}

func (t *topicReader) topics(ctx context.Context, ev *forge.Event) ([]string, error) {
	if ev.Forge != fedv1.SourceGitea && ev.Forge != fedv1.SourceForgejo {
		return nil, nil
	}
	t.once.Do(func() { t.hc = forge.NewAPIClient(t.f.client, forge.APIClientConfig{}) })
	topics, err := gitea.ReadTopics(ctx, t.hc, ev.Repository, t.f.client.UserAgent())
	if err != nil {
		return nil, fmt.Errorf("topics of %s: %w", ev.Repository.WebURL, err)
	}
	return topics, nil
}
