package app

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// movedCondition waits for the Moved condition of ns/name to have reason want.
func movedCondition(t *testing.T, p *pair, ns, name, want string) *metav1.Condition {
	t.Helper()
	var c *metav1.Condition
	eventually(t, 30*time.Second, func() error {
		var a fedv1.FederatedActor
		if err := p.k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &a); err != nil {
			return err
		}
		c = meta.FindStatusCondition(a.Status.Conditions, fedv1.ConditionMoved)
		if c == nil || c.Reason != want {
			return fmt.Errorf("Moved of %s/%s is %+v, want reason %s", ns, name, c, want)
		}
		return nil
	})
	return c
}

// patchActor changes a FederatedActor's spec with a merge patch.
func patchActor(t *testing.T, p *pair, ns, name string, change func(*fedv1.FederatedActor)) {
	t.Helper()
	var a fedv1.FederatedActor
	must(t, p.k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &a))
	base := a.DeepCopy()
	change(&a)
	must(t, p.k8s.Patch(context.Background(), &a, client.MergeFrom(base)))
}

// TestLocalMove moves alpha's actor "old" to beta's actor "new2", with a Mastodon-like
// follower written in Go (ticketPeer: its inbox keeps only what verifies against the
// sender's published key). First the target does not name the old actor in alsoKnownAs:
// the Moved condition says so, an Event tells it and nothing is sent, while the old
// actor's document already shows movedTo and a new Follow gets a Reject. Then movedTo
// names a target that lists the old actor: the follower receives one signed Move
// {object: old, target: new2} and re-fetches both documents, which point at each other,
// and a Fedforge follower on beta migrates its Subscription to new2.
func TestLocalMove(t *testing.T) {
	t.Parallel()
	tp := newTicketPeer(t)
	p := newPair(t, tp.host+"="+tp.addr)
	tp.attach(p.alpha.listen)
	ctx := context.Background()
	p.actor(t, p.alpha, "old", "old", false)
	p.actor(t, p.beta, "new", "new", false)
	oldID := p.alpha.base() + "/actors/old"
	newID, new2ID := p.beta.base()+"/actors/new", p.beta.base()+"/actors/new2"
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.beta.ns, Name: "new2"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorApplication,
			PreferredUsername: "new2", AlsoKnownAs: []string{oldID}},
	}))
	waitServed(t, p.beta, "new2")

	// A Fedforge follower on beta too: its own inbound Move handling migrates it.
	p.actor(t, p.beta, "watcher", "watcher", false)
	p.follow(t, p.beta, "follow-old", "watcher", oldID)
	p.phase(t, p.beta.ns, "follow-old", fedv1.PhaseAccepted)

	alice := tp.actor("alice")
	follow := alice + "/follows/1"
	if code, body := tp.send(t, p, "alice", map[string]any{"@context": activitypub.ActivityStreamsContext,
		"id": follow, "type": "Follow", "actor": alice, "object": oldID}); code != 202 {
		t.Fatalf("Follow: %d %s", code, body)
	}
	p.inbound(t, p.alpha.ns, "old", alice, fedv1.PhaseAccepted)
	eventually(t, 30*time.Second, func() error {
		if len(tp.answers("Accept", follow)) != 1 {
			return fmt.Errorf("no verified Accept of %s", follow)
		}
		return nil
	})

	// The target does not name the old actor: refused, said so, nothing sent.
	patchActor(t, p, p.alpha.ns, "old", func(a *fedv1.FederatedActor) { a.Spec.MovedTo = newID })
	c := movedCondition(t, p, p.alpha.ns, "old", fedv1.ReasonMoveTargetUnconfirmed)
	if c.Status != metav1.ConditionFalse {
		t.Errorf("Moved = %+v, want False", c)
	}
	var old fedv1.FederatedActor
	must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: p.alpha.ns, Name: "old"}, &old))
	tells(t, p, &old, "FederatedActor", "Warning "+fedv1.EventMoveRefused+": no Move sent: "+newID)
	if doc := getAS2(t, p.alpha, "/actors/old"); doc["movedTo"] != newID {
		t.Errorf("old actor's movedTo = %v, want %s", doc["movedTo"], newID)
	}
	// A moved actor takes no new followers.
	mallory := tp.actor("mallory")
	if code, body := tp.send(t, p, "mallory", map[string]any{"@context": activitypub.ActivityStreamsContext,
		"id": mallory + "/follows/1", "type": "Follow", "actor": mallory, "object": oldID}); code != 202 {
		t.Fatalf("Follow of a moved actor: %d %s", code, body)
	}
	eventually(t, 30*time.Second, func() error {
		if len(tp.answers("Reject", mallory+"/follows/1")) != 1 {
			return fmt.Errorf("no verified Reject of the Follow of a moved actor")
		}
		return nil
	})
	if moves := tp.answers("Move", oldID); len(moves) != 0 {
		t.Fatalf("a Move was sent to a target that does not name the old actor: %v", moves)
	}

	// A target that names the old actor: one signed Move reaches the follower.
	patchActor(t, p, p.alpha.ns, "old", func(a *fedv1.FederatedActor) { a.Spec.MovedTo = new2ID })
	movedCondition(t, p, p.alpha.ns, "old", fedv1.ReasonMoveSent)
	var move map[string]any
	eventually(t, 30*time.Second, func() error {
		moves := tp.answers("Move", oldID)
		if len(moves) != 1 {
			return fmt.Errorf("%d verified Moves of %s", len(moves), oldID)
		}
		move = moves[0]
		return nil
	})
	if move["actor"] != oldID || move["target"] != new2ID {
		t.Fatalf("Move = %v", move)
	}
	// The follower re-fetches both documents, as Mastodon does before it follows the new
	// account: the old one points at the new, the new one names the old.
	peer := activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Resolve: map[string]string{alphaHost: p.alpha.listen, betaHost: p.beta.listen}})
	oldDoc, err := peer.FetchObject(ctx, oldID, nil)
	must(t, err)
	newDoc, err := peer.FetchObject(ctx, new2ID, nil)
	must(t, err)
	if oldDoc.MovedTo.ID() != new2ID || !newDoc.AlsoKnownAs.Contains(oldID) {
		t.Errorf("old movedTo %q, new alsoKnownAs %v", oldDoc.MovedTo.ID(), newDoc.AlsoKnownAs)
	}
	tells(t, p, &old, "FederatedActor", "Normal "+fedv1.EventMoved+": Move to "+new2ID)
	// Beta, a Fedforge follower, believed the Move (new2 names old) and follows new2 instead.
	p.gone(t, p.beta.ns, func(s fedv1.Subscription) bool { return s.Name == "follow-old" })
	eventually(t, 30*time.Second, func() error {
		var list fedv1.SubscriptionList
		if err := p.k8s.List(ctx, &list, client.InNamespace(p.beta.ns)); err != nil {
			return err
		}
		for _, s := range list.Items {
			if s.Spec.Direction == fedv1.DirectionOutbound && s.Spec.ActorRef.Name == "watcher" && s.Spec.RemoteActor == new2ID &&
				s.Annotations["federation.fedforge.dev/moved-from"] == oldID {
				return nil
			}
		}
		return fmt.Errorf("beta's watcher does not follow %s", new2ID)
	})

	// Sent once: a change of the document (an Update) does not send the Move again.
	patchActor(t, p, p.alpha.ns, "old", func(a *fedv1.FederatedActor) { a.Spec.Summary = "moved to beta" })
	eventually(t, 30*time.Second, func() error {
		for _, u := range tp.answers("Update", oldID) {
			if obj, _ := u["object"].(map[string]any); obj["summary"] != nil {
				return nil
			}
		}
		return fmt.Errorf("no Update with the new summary")
	})
	if moves := tp.answers("Move", oldID); len(moves) != 1 {
		t.Errorf("%d Moves after the Update, want 1", len(moves))
	}
}
