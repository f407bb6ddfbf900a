package gitea

import (
	"fmt"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/webhook"
)

// giteaRepository reads Gitea's `repository` event, which only organization- and
// system-level hooks deliver for a new repository (a repository's own hook cannot exist
// before it). Gitea 1.27 sends it with action "created" or "deleted"; only a creation
// is published. Its payload lists the repository's topics as they were when the
// repository was made: always none for a repository created through the API or the web
// form (neither takes topics), and none either for one generated from a template, whose
// topics Gitea copies after it sent the event (both seen on a real Gitea 1.27.3).
func giteaRepository(ev *forge.Event, p *gtPayload) (*forge.Event, error) {
	if p.Action != "created" {
		return nil, fmt.Errorf("%w: repository %s", forge.ErrIgnoredEvent, p.Action)
	}
	ev.Kind, ev.Action = forge.KindRepository, forge.ActionCreated
	ev.URL, ev.Body, ev.BodyFormat = ev.Repository.WebURL, ev.Repository.Description, forge.FormatPlain
	ev.Time = webhook.ParseTime(ev.Repository.Created)
	ev.Identity = forge.RepositoryIdentity(ev.Repository)
	return ev, nil
}
