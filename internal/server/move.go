package server

import (
	"context"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// onMove handles Move{actor: old, object: old, target: new}: when the new account names
// the old one in alsoKnownAs (fetched fresh from the new account's host, never taken
// from the Move itself), every local actor that followed the old account follows the
// new one instead, as Mastodon migrates followers.
func (f *federation) onMove(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	oldID := act.Actor.ID()
	if act.Object.ID() != oldID {
		return nil, refuse(http.StatusBadRequest, nil, "Move of %s by %s: only an actor can move itself", act.Object.ID(), oldID)
	}
	newID := act.Target.ID()
	if newID == "" || newID == oldID {
		return nil, refuse(http.StatusBadRequest, nil, "Move without a new target")
	}
	doc, err := f.client.FetchObject(ctx, newID, f.actors.anySigner(ctx))
	if err != nil {
		return nil, err
	}
	if doc.ID != newID {
		return nil, refuse(http.StatusBadRequest, nil, "Move target %s serves the document of %s", newID, doc.ID)
	}
	if !doc.AlsoKnownAs.Contains(oldID) {
		return nil, refuse(http.StatusBadRequest, nil, "Move target %s does not name %s in alsoKnownAs", newID, oldID)
	}
	if _, err := f.cacheActor(ctx, doc); err != nil {
		return nil, err
	}
	subs, err := f.subs.ofRemote(ctx, oldID)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range subs {
		s := &subs[i]
		if s.Spec.Direction != fedv1.DirectionOutbound {
			continue
		}
		la, err := f.actors.byObject(ctx, s.Spec.ActorRef.Name)
		if err != nil {
			continue
		}
		out = append(out, la.urls.ID)
		moved := &fedv1.Subscription{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: subscriptionName(la.obj.Name, "out", newID), Labels: s.Labels,
				Annotations: map[string]string{"federation.fedforge.dev/moved-from": oldID}},
			Spec: fedv1.SubscriptionSpec{Direction: fedv1.DirectionOutbound, ActorRef: s.Spec.ActorRef, RemoteActor: newID},
		}
		if err := f.kube.Create(ctx, moved); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("following %s, the new account of %s: %w", newID, oldID, err)
		}
		if err := f.subs.deleteQuietly(ctx, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}
