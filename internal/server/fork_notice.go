package server

import (
	"context"
	"errors"
	"fmt"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/store"
)

// The fork side of cross-instance merge requests (issue 14, docs/merge-requests.md):
// a Repository actor whose repository was forked from a Repository actor on another
// instance (spec.mergeRequests.upstream) announces the fork to it once, with ForgeFed's
// fork notice, Create{Repository} whose origin and forkedFrom name the upstream. Fedforge
// A checks it against this actor's own document (which shows forkedFrom, actor_document.go)
// and lists the fork in the upstream's forks collection (fork.go on that side).

// mergeRequestUpstream is the upstream a Repository actor declares in
// spec.mergeRequests.upstream, else "" (upstreamOf adds the one found from the forge).
func mergeRequestUpstream(a *fedv1.FederatedActor) string {
	if a.Spec.Type != fedv1.ActorRepository || a.Spec.MergeRequests == nil {
		return ""
	}
	return a.Spec.MergeRequests.Upstream
}

// mergeRequestLabel is the forge label that marks a pull request for upstream.
func mergeRequestLabel(a *fedv1.FederatedActor) string {
	if a.Spec.MergeRequests != nil && a.Spec.MergeRequests.Label != "" {
		return a.Spec.MergeRequests.Label
	}
	return "upstream"
}

// announceFork sends the fork notice of la to its upstream unless the store says it was
// sent to that upstream already (a changed upstream is told again, under a new id). It
// waits for the forge's clone URL (status.forge, filled by the operator; its arrival
// reconciles the actor again) when the actor fronts a forge, so that the notice carries
// cloneUri. The notice is queued durably; the store records it after the queue has it.
func (f *federation) announceFork(ctx context.Context, la *localActor) error {
	if la.obj.Spec.Type != fedv1.ActorRepository || (la.obj.Spec.Forge != nil && (la.obj.Status.Forge == nil || la.obj.Status.Forge.CloneURI == "")) {
		return nil // not a repository, or the forge's clone URL not read yet (its arrival reconciles again)
	}
	up, found := mergeRequestUpstream(la.obj), false
	if up == "" {
		var err error
		if up, err = f.findUpstream(ctx, la); err != nil || up == "" {
			return err
		}
		found = true
	}
	if n, err := f.store.ForkNoticeOf(ctx, la.urls.ID); err == nil && n.UpstreamID == up && n.Found == found {
		return nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	log := f.log.WithValues("actor", la.urls.ID, "upstream", up)
	if _, err := f.actors.byIRI(ctx, up); err == nil {
		log.Info("spec.mergeRequests.upstream names an actor of this server; no fork notice is sent")
		return nil
	}
	var clone string
	if st := la.obj.Status.Forge; st != nil {
		clone = st.CloneURI
	}
	cs, err := f.policies.load(ctx)
	if err != nil {
		return err
	}
	if v := verdictFor(cs, delivery.HostOf(up)); !v.allowed {
		f.refused.add(refusedDelivery, f.now(), v.by...)
		log.Info("the upstream's host is refused by policy; no fork notice is sent")
		return nil
	}
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return err
	}
	ra, err := f.remoteActor(ctx, up, signer, false)
	if err != nil {
		return fmt.Errorf("fork notice of %s: resolving the upstream %s: %w", la.urls.ID, up, err)
	}
	repo := &activitypub.Object{ID: la.urls.ID, Type: activitypub.Types{activitypub.TypeRepository},
		Name: la.obj.Spec.Name, Origin: activitypub.IRIRef(up)}
	if repo.Name == "" {
		repo.Name = la.obj.Spec.PreferredUsername
	}
	repo.ForkedFrom = activitypub.IRIRef(up)
	if clone != "" {
		repo.CloneURI = activitypub.IRIRefs(clone)
	}
	create := activitypub.NewActivity(activitypub.TypeCreate, activityID(la.urls.ID, "Create", "fork-notice|"+up), la.urls.ID,
		activitypub.ObjectRef(repo), activitypub.IRIRefs(up), nil)
	create.Published = activitypub.Time{Time: f.now().UTC()}
	if err := f.publish(ctx, la, create, store.Direct, []Recipient{{Inbox: ra.Inbox}}); err != nil {
		return err
	}
	log.Info("fork notice queued", "id", create.ID)
	return f.store.RecordForkNotice(ctx, store.ForkNotice{ActorID: la.urls.ID, UpstreamID: up, ActivityID: create.ID, Sent: f.now().UTC(), Found: found})
}
