package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/go-logr/logr"
)

// setAccepted records the outcome of an exchange in the Accepted condition and phase.
func setAccepted(s *fedv1.Subscription, phase fedv1.SubscriptionPhase, status metav1.ConditionStatus, reason, msg string) {
	s.Status.Phase = phase
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: fedv1.ConditionAccepted, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.Generation})
}

// subscriptions reads this server's Subscriptions from the informer cache (by the
// indexes below) and writes them: status patches, quiet deletions.
type subscriptions struct {
	reader client.Reader // the informer cache
	writer
	srv types.NamespacedName
	log logr.Logger
}

// Cache indexes of Subscriptions.
const (
	indexSubActor  = "fedforge.sub.actor"  // spec.actorRef.name
	indexSubRemote = "fedforge.sub.remote" // spec.remoteActor and status.remoteActorId
	indexSubFollow = "fedforge.sub.follow" // status.followActivityId
	indexSubHost   = "fedforge.sub.host"   // status.remoteHost
)

// indexSubscriptions registers the Subscription indexes on c; it must run before c starts.
func indexSubscriptions(ctx context.Context, c cache.Cache) error {
	idx := map[string]func(*fedv1.Subscription) []string{
		indexSubActor: func(s *fedv1.Subscription) []string { return []string{s.Spec.ActorRef.Name} },
		indexSubRemote: func(s *fedv1.Subscription) []string {
			out := []string{s.Spec.RemoteActor}
			if id := s.Status.RemoteActorID; id != "" && id != s.Spec.RemoteActor {
				out = append(out, id)
			}
			return out
		},
		indexSubFollow: func(s *fedv1.Subscription) []string {
			if s.Status.FollowActivityID == "" {
				return nil
			}
			return []string{s.Status.FollowActivityID}
		},
		indexSubHost: func(s *fedv1.Subscription) []string {
			if s.Status.RemoteHost == "" {
				return nil
			}
			return []string{s.Status.RemoteHost}
		},
	}
	for name, fn := range idx {
		fn := fn
		if err := c.IndexField(ctx, &fedv1.Subscription{}, name, func(o client.Object) []string { return fn(o.(*fedv1.Subscription)) }); err != nil {
			return err
		}
	}
	return nil
}

// list lists this namespace's Subscriptions matching an index value. The items
// are the cache's own objects: callers must copy before changing them.
func (sc *subscriptions) list(ctx context.Context, index, value string) ([]fedv1.Subscription, error) {
	var list fedv1.SubscriptionList
	if err := sc.reader.List(ctx, &list, client.InNamespace(sc.srv.Namespace), client.MatchingFields{index: value}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// ofRemote lists the Subscriptions naming a remote actor (by spec or resolved id).
func (sc *subscriptions) ofRemote(ctx context.Context, remoteID string) ([]fedv1.Subscription, error) {
	return sc.list(ctx, indexSubRemote, remoteID)
}

// InboundName is the deterministic name of the Subscription of a remote follower of a
// local actor: a second Follow finds the same object.
func InboundName(actorName, remoteID string) string {
	return subscriptionName(actorName, "in", remoteID)
}

// subscriptionName is <actor>-<direction>-<hash of the remote actor>, within 253 bytes.
func subscriptionName(actorName, dir, remoteID string) string {
	sum := sha256.Sum256([]byte(remoteID))
	if len(actorName) > 200 {
		actorName = strings.TrimRight(actorName[:200], "-.")
	}
	return actorName + "-" + dir + "-" + hex.EncodeToString(sum[:6])
}

// deleteQuietly deletes a Subscription whose exchange the remote side already ended:
// the annotation tells its finalizer to send nothing.
func (sc *subscriptions) deleteQuietly(ctx context.Context, s *fedv1.Subscription) error {
	key := client.ObjectKeyFromObject(s)
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, AnnotationNoExchange))
	obj := &fedv1.Subscription{}
	obj.Namespace, obj.Name = key.Namespace, key.Name
	if err := sc.kube.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return client.IgnoreNotFound(err)
	}
	return client.IgnoreNotFound(sc.kube.Delete(ctx, obj))
}

// expectsPosts reports whether an Outbound Subscription asks for the remote actor's
// posts: it is Accepted, or its Follow was sent and the answer is outstanding. The second
// case covers a post that overtakes the Accept (a peer delivers both at once) and a cache
// that has not yet seen the Accept this server just recorded.
func expectsPosts(s *fedv1.Subscription) bool {
	if s.Spec.Direction != fedv1.DirectionOutbound || s.DeletionTimestamp != nil {
		return false
	}
	return s.Status.Phase == fedv1.PhaseAccepted || (s.Status.Phase == fedv1.PhasePending && s.Status.FollowActivityID != "")
}

// patchStatus applies change to the live Subscription's status with an
// optimistic lock, retrying on conflicts.
func (sc *subscriptions) patchStatus(ctx context.Context, key types.NamespacedName, change func(*fedv1.Subscription)) error {
	return patchLiveStatus(ctx, sc.writer, key, func(s *fedv1.Subscription) bool {
		before := s.Status.DeepCopy()
		change(s)
		return !equality.Semantic.DeepEqual(*before, s.Status) // nothing to write: re-runs cost no API-server writes
	})
}

// onGone removes the Subscriptions whose personal inbox answered 410 Gone: the remote
// actor no longer exists. A shared inbox that is gone says nothing about one actor. The
// delivery executor calls it.
func (sc *subscriptions) onGone(ctx context.Context, d store.Delivery) {
	subs, err := sc.list(ctx, indexSubHost, d.Host)
	if err != nil {
		return
	}
	for i := range subs {
		if subs[i].Status.RemoteInbox == d.Inbox && subs[i].Status.RemoteSharedInbox == "" {
			sc.log.Info("remote actor is gone (410); removing its Subscription", "subscription", subs[i].Name, "inbox", d.Inbox)
			_ = sc.deleteQuietly(ctx, &subs[i])
		}
	}
}
