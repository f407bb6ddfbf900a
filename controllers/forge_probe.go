package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
	"github.com/fedforge/fedforge/internal/version"
)

// Forge probe timing: a reachable forge is checked again every forgeCheckInterval; a
// failing one after the time it has been failing, between forgeRetryMin and
// forgeCheckInterval (a backoff that needs no state beyond the condition's
// lastTransitionTime).
const (
	forgeCheckInterval = 5 * time.Minute
	forgeRetryMin      = 15 * time.Second
)

// forgeProbe checks spec.forge of actor (the server gives the outbound network rules) and
// sets the ForgeReachable condition and status.forge. It returns when to check again. It
// makes no API call when the condition is current and younger than forgeCheckInterval,
// so that reconciles woken by followers do not call the forge each time. Without
// spec.forge it removes the condition and status.forge.
func (r *FederatedActorReconciler) forgeProbe(ctx context.Context, actor *actorT, server *serverT, now time.Time) time.Duration {
	spec := actor.Spec.Forge
	if spec == nil {
		meta.RemoveStatusCondition(&actor.Status.Conditions, fedv1.ConditionForgeReachable)
		actor.Status.Forge = nil
		return 0
	}
	cond := meta.FindStatusCondition(actor.Status.Conditions, fedv1.ConditionForgeReachable)
	if st := actor.Status.Forge; cond != nil && cond.ObservedGeneration == actor.Generation && st != nil && st.CheckedAt != nil {
		if wait := forgeNextCheck(cond, st.CheckedAt.Time, now); wait > 0 {
			return wait
		}
	}

	c := metav1.Condition{Type: fedv1.ConditionForgeReachable, ObservedGeneration: actor.Generation, Status: metav1.ConditionFalse}
	info, reason, err := r.checkForge(ctx, actor, server)
	if err != nil {
		c.Reason, c.Message = reason, truncate(err.Error())
		if cond == nil || cond.ObservedGeneration != actor.Generation {
			actor.Status.Forge = &fedv1.ForgeStatus{} // what we knew was about another spec
		}
	} else {
		c.Status, c.Reason = metav1.ConditionTrue, fedv1.ReasonForgeReachable
		c.Message = fmt.Sprintf("%s answered for %s", spec.URL, spec.Project)
		actor.Status.Forge = &fedv1.ForgeStatus{WebURL: info.WebURL, CloneURI: info.CloneURL, ForkedFrom: info.ForkedFrom}
	}
	if actor.Status.Forge == nil {
		actor.Status.Forge = &fedv1.ForgeStatus{}
	}
	actor.Status.Forge.CheckedAt = &metav1.Time{Time: now}
	meta.SetStatusCondition(&actor.Status.Conditions, c)
	logf.FromContext(ctx).V(1).Info("checked forge", "forge", spec.URL, "project", spec.Project, "reachable", c.Status, "reason", c.Reason)
	return forgeNextCheck(meta.FindStatusCondition(actor.Status.Conditions, fedv1.ConditionForgeReachable), now, now)
}

// forgeNextCheck is how long after now the forge is due again, given the last check.
func forgeNextCheck(cond *metav1.Condition, checked, now time.Time) time.Duration {
	interval := forgeCheckInterval
	if cond.Status != metav1.ConditionTrue {
		interval = min(max(checked.Sub(cond.LastTransitionTime.Time), forgeRetryMin), forgeCheckInterval)
	}
	return checked.Add(interval).Sub(now)
}

// checkForge reads the token and runs the forge's probe. The error is the condition's
// message, the reason its reason.
func (r *FederatedActorReconciler) checkForge(ctx context.Context, actor *actorT, server *serverT) (forge.RepoInfo, string, error) {
	spec := actor.Spec.Forge
	token, err := r.forgeToken(ctx, actor.Namespace, spec.TokenSecretRef)
	if err != nil {
		return forge.RepoInfo{}, fedv1.ReasonTokenMissing, err
	}
	var typ fedv1.SourceType
	switch spec.Type {
	case fedv1.ForgeGitea:
		typ = fedv1.SourceGitea
	case fedv1.ForgeForgejo:
		typ = fedv1.SourceForgejo
	default:
		return forge.RepoInfo{}, fedv1.ReasonForgeNotSupported, fmt.Errorf("no API client for %s forges yet (Gitea and Forgejo are supported)", spec.Type)
	}
	guard, err := forgeGuard(server)
	if err != nil {
		return forge.RepoInfo{}, fedv1.ReasonForgeUnreachable, err
	}
	hc := forge.NewAPIClient(guard, forge.APIClientConfig{})
	defer hc.CloseIdleConnections()
	w, err := gitea.NewWriter(gitea.Access{Type: typ, URL: spec.URL, Project: spec.Project, Token: token, HTTPClient: hc, UserAgent: guard.UserAgent()})
	if err != nil {
		return forge.RepoInfo{}, fedv1.ReasonForgeUnreachable, err
	}
	info, err := w.Check(ctx)
	if e, ok := forge.AsAPIError(err); ok && (e.Unauthorized() || e.Forbidden()) {
		return info, fedv1.ReasonForgeUnauthorized, err
	}
	if err != nil {
		return info, fedv1.ReasonForgeUnreachable, err
	}
	return info, "", nil
}

// forgeGuard is the outbound address guard of the actor's server: the operator reaches
// the forge under the same rule as the server reaches peers (special ranges refused
// unless spec.allowedPrivateCIDRs lists them).
func forgeGuard(server *serverT) (*activitypub.Client, error) {
	var cidrs []netip.Prefix
	for _, s := range server.Spec.AllowedPrivateCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("FederationServer %s: allowedPrivateCIDRs %q: %w", server.Name, s, err)
		}
		cidrs = append(cidrs, p)
	}
	return activitypub.NewClient(activitypub.ClientConfig{Version: version.Version, InstanceHost: server.Spec.Host, AllowedCIDRs: cidrs}), nil
}

// forgeToken reads the token from its Secret, uncached: the manager's cache holds only
// the Secrets Fedforge manages, and a user's token Secret is read only when it is needed.
// The token never goes into an error, a log or status.
func (r *FederatedActorReconciler) forgeToken(ctx context.Context, ns string, ref fedv1.SecretKeyReference) (string, error) {
	key := ref.Key
	if key == "" {
		key = fedv1.DefaultForgeTokenKey
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	s := &corev1.Secret{}
	err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, s)
	switch {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("Secret %s/%s does not exist", ns, ref.Name)
	case err != nil:
		return "", fmt.Errorf("reading Secret %s/%s: %w", ns, ref.Name, err)
	}
	tok := string(s.Data[key])
	if tok == "" {
		return "", fmt.Errorf("Secret %s/%s has no key %q, or it is empty", ns, ref.Name, key)
	}
	return tok, nil
}

// truncate bounds a condition message as setFailed does.
func truncate(msg string) string {
	if len(msg) > maxConditionMessage {
		return msg[:maxConditionMessage-3] + "..."
	}
	return msg
}
