package sources

import (
	"context"
	"fmt"
	"slices"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
)

// TopicsFunc reads a repository's topics from its forge, for a creation event whose
// payload was made before they were set. It runs in the webhook queue's worker; an
// error retries the event later.
type TopicsFunc func(ctx context.Context, ev *forge.Event) ([]string, error)

// Reasons scoped gives for publishing nothing, each counted as its own result.
const (
	resultPrivate  = "private"
	resultNotTopic = "not_in_topic"
)

// scoped is what a source publishes of one authentic event: nothing (with the reason)
// or the event itself and, for a source that selects by topic, the announcement that a
// repository is in the topic. Rules, in order:
//   - a private or internal repository reported by a hook installed anywhere but on the
//     repository itself (an organization's, a user's, the whole instance's) is not
//     published: those hooks also see repositories nobody chose to publish;
//   - a source with topics publishes only events of repositories carrying one of them
//     (the payload's list; a creation whose payload lists none is read from the forge);
//   - such a source, when it selects Repository, announces the repository the first
//     time an event shows it in the topic: forges send no webhook when topics change,
//     so a repository given its topics after creation is announced with its next push,
//     release or issue. The announcement has the identity of the creation, so the
//     outbox keeps one per repository whichever event came first.
func (h *WebhookHandler) scoped(ctx context.Context, src *fedv1.EventSource, ev *forge.Event) ([]*forge.Event, string, error) {
	if ev.Repository.Private && ev.HookScope != "" && ev.HookScope != "repository" {
		return nil, resultPrivate, nil
	}
	if len(src.Topics) == 0 {
		if !render.Selected(src, ev.Kind) {
			return nil, resultNotSelected, nil
		}
		return []*forge.Event{ev}, "", nil
	}
	if ev.Kind == forge.KindRepository && len(ev.Topics) == 0 && h.cfg.Topics != nil {
		topics, err := h.cfg.Topics(ctx, ev)
		if err != nil {
			return nil, "", fmt.Errorf("reading the topics of %s: %w", ev.Repository.FullName, err)
		}
		ev.Topics = topics
	}
	if !InTopics(ev.Topics, src.Topics) {
		return nil, resultNotTopic, nil
	}
	var out []*forge.Event
	if ev.Kind != forge.KindRepository && render.Selected(src, forge.KindRepository) {
		seen := &forge.Event{Forge: ev.Forge, Kind: forge.KindRepository, Action: forge.ActionTopicSeen,
			DeliveryID: ev.DeliveryID, HookScope: ev.HookScope, Repository: ev.Repository, Topics: ev.Topics,
			URL: ev.Repository.WebURL, Body: ev.Repository.Description, BodyFormat: forge.FormatPlain,
			Time: ev.Time, Identity: forge.RepositoryIdentity(ev.Repository)}
		out = append(out, seen)
	}
	if render.Selected(src, ev.Kind) {
		out = append(out, ev)
	}
	if len(out) == 0 {
		return nil, resultNotSelected, nil
	}
	return out, "", nil
}

// InTopics reports whether a repository's topics include one of want, compared
// case-insensitively (Gitea and Forgejo store topics in lower case; a spec may not).
func InTopics(have, want []string) bool {
	return slices.ContainsFunc(have, func(t string) bool {
		return slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(t, w) })
	})
}
