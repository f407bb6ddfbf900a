package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/keys"
)

// Annotations on the key Secret that record its life; the key controller reads them back.
const (
	annotationKeysCreatedAt        = "federation.fedforge.dev/keys-created-at"
	annotationPreviousKeysExpireAt = "federation.fedforge.dev/previous-keys-expire-at"
	annotationRotatedFor           = "federation.fedforge.dev/rotated-for"
	labelComponentKeys             = "signing-keys"
	defaultKeyOverlap              = 7 * 24 * time.Hour
)

// KeySecretName is the deterministic name of an actor's key Secret.
func KeySecretName(actorName string) string { return childName(actorName, "keys") }

// ActorKeyReconciler keeps each FederatedActor's signing-key Secret: it creates the keys,
// rotates them on the key policy's period or on request, keeps the previous public keys
// published for the overlap window, and repairs a Secret that was deleted or tampered with.
type ActorKeyReconciler struct {
	client.Client
	// APIReader reads the key Secret straight from the API server: a cache that has not
	// seen a just-written Secret yet must never make the controller generate keys again.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
}

// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federatedactors,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federatedactors/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings the key Secret of one actor in line with its key policy. Status is
// written once, on the way out: a failure turns KeyReady False with its reason and
// message (see statusOnExit).
func (r *ActorKeyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	actor := &actorT{}
	if err := r.Get(ctx, req.NamespacedName, actor); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !actor.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the Secret goes with its owner
	}
	base := actor.DeepCopy()
	defer func() {
		res, err = statusOnExit(ctx, r.Client, actor, base, res, err, func() {
			setFailed(&actor.Status.Conditions, actor.Generation, err, fedv1.ConditionKeyReady)
		})
	}()
	now := r.Clock.Now().UTC()
	name := KeySecretName(actor.Name)
	plan, err := r.ensureSecret(ctx, actor, name, now)
	if err != nil {
		return ctrl.Result{}, err
	}

	actor.Status.KeySecretName = name
	if actor.Status.Keys == nil {
		actor.Status.Keys = &fedv1.ActorKeys{}
	}
	actor.Status.Keys.RSAFingerprint = keys.Fingerprint(plan.pair.RSA.Public())
	actor.Status.Keys.Ed25519Fingerprint = keys.Fingerprint(plan.pair.Ed25519.Public())
	created := metav1.NewTime(plan.createdAt)
	actor.Status.Keys.CreatedAt = &created
	actor.Status.Keys.PreviousExpiresAt = nil
	if !plan.previousExpiresAt.IsZero() {
		t := metav1.NewTime(plan.previousExpiresAt)
		actor.Status.Keys.PreviousExpiresAt = &t
	}
	reason := plan.reason
	if reason == "" {
		reason = fedv1.ReasonReconciled
	}
	meta.SetStatusCondition(&actor.Status.Conditions, metav1.Condition{
		Type: fedv1.ConditionKeyReady, Status: metav1.ConditionTrue, Reason: reason,
		Message: fmt.Sprintf("RSA-2048 and Ed25519 keys in Secret %s", name), ObservedGeneration: actor.Generation,
	})
	return ctrl.Result{RequeueAfter: plan.nextCheck(actor, now)}, nil
}

// ensureSecret reads the key Secret, decides what it must hold, writes it when that
// changed and records why in an Event.
func (r *ActorKeyReconciler) ensureSecret(ctx context.Context, actor *actorT, name string, now time.Time) (*keyPlan, error) {
	log := logf.FromContext(ctx)
	existing := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: actor.Namespace, Name: name}, existing)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading key Secret %s/%s: %w", actor.Namespace, name, err)
	}
	plan, err := planKeys(actor, existing, apierrors.IsNotFound(err), now)
	if err != nil {
		return nil, err
	}
	if !plan.changed {
		return plan, nil
	}
	secret := r.desiredSecret(actor, name, plan)
	if err := controllerutil.SetControllerReference(actor, secret, r.Scheme()); err != nil {
		return nil, err
	}
	if err := applyObject(ctx, r.Client, secret); err != nil {
		return nil, withReason(fedv1.ReasonApplyFailed, err)
	}
	switch plan.reason {
	case fedv1.ReasonKeysRepaired:
		log.Info("key Secret repaired", "secret", name, "why", plan.why)
		r.Recorder.Eventf(actor, secret, corev1.EventTypeWarning, plan.reason, "RepairKeys", "Key Secret %s %s; made new keys", name, plan.why)
	case fedv1.ReasonKeysRotated:
		log.Info("keys rotated", "secret", name, "why", plan.why)
		r.Recorder.Eventf(actor, secret, corev1.EventTypeNormal, plan.reason, "RotateKeys", "Keys rotated (%s); previous public keys published until %s", plan.why, plan.previousExpiresAt.Format(time.RFC3339))
	case fedv1.ReasonKeysGenerated:
		r.Recorder.Eventf(actor, secret, corev1.EventTypeNormal, plan.reason, "GenerateKeys", "Made RSA-2048 and Ed25519 keys in Secret %s", name)
	}
	return plan, nil
}

// keyPlan is what the reconciler decided about one actor's keys.
type keyPlan struct {
	pair              *keys.Pair
	data              map[string][]byte
	createdAt         time.Time
	previousExpiresAt time.Time
	rotatedFor        string
	changed           bool
	reason            string
	why               string
}

// planKeys decides whether to keep, make, rotate or repair the keys, and what the Secret
// holds afterwards. It does no I/O, so the decision is easy to read and to test.
func planKeys(actor *actorT, s *corev1.Secret, missing bool, now time.Time) (*keyPlan, error) {
	p := &keyPlan{rotatedFor: actor.Annotations[fedv1.AnnotationRotateKeys]}
	if !missing {
		pair, err := keys.FromData(s.Data)
		if err == nil {
			p.pair, p.data = pair, copyData(s.Data)
			p.createdAt = parseTime(s.Annotations[annotationKeysCreatedAt], now)
			p.previousExpiresAt = parseTime(s.Annotations[annotationPreviousKeysExpireAt], time.Time{})
			oldRotatedFor := s.Annotations[annotationRotatedFor]
			switch {
			case p.rotatedFor != oldRotatedFor && p.rotatedFor != "":
				return p, p.rotate(actor, now, "requested by annotation "+fedv1.AnnotationRotateKeys)
			case rotationDue(actor, p.createdAt, now):
				return p, p.rotate(actor, now, "rotation period elapsed")
			}
			if !p.previousExpiresAt.IsZero() && !now.Before(p.previousExpiresAt) {
				delete(p.data, keys.PreviousRSAPublicKey)
				delete(p.data, keys.PreviousEd25519PublicKey)
				delete(p.data, keys.PreviousRSAPrivateKey)
				delete(p.data, keys.PreviousEd25519PrivateKey)
				p.previousExpiresAt = time.Time{}
				p.changed = true
			}
			// Re-apply when labels, annotations or owner drifted; the data is kept.
			p.changed = p.changed || s.Labels[fedv1.LabelActor] != actor.Name || s.Annotations[annotationKeysCreatedAt] == "" ||
				s.Annotations[annotationRotatedFor] != p.rotatedFor || !metav1.IsControlledBy(s, actor)
			return p, nil
		}
		p.why = "held invalid keys (" + err.Error() + ")"
	} else if actor.Status.KeySecretName != "" {
		p.why = "was deleted"
	}
	pair, err := keys.Generate()
	if err != nil {
		return nil, err
	}
	data, err := pair.Data()
	if err != nil {
		return nil, err
	}
	p.pair, p.data, p.createdAt, p.changed = pair, data, now, true
	p.reason = fedv1.ReasonKeysGenerated
	if p.why != "" {
		p.reason = fedv1.ReasonKeysRepaired
	}
	return p, nil
}

// rotate makes new keys and keeps the current public keys as the previous ones.
func (p *keyPlan) rotate(actor *actorT, now time.Time, why string) error {
	pair, err := keys.Generate()
	if err != nil {
		return err
	}
	data, err := pair.Data()
	if err != nil {
		return err
	}
	data[keys.PreviousRSAPublicKey] = p.data[keys.RSAPublicKey]
	data[keys.PreviousEd25519PublicKey] = p.data[keys.Ed25519PublicKey]
	if old := p.data[keys.RSAPrivateKey]; len(old) > 0 {
		data[keys.PreviousRSAPrivateKey] = old
	}
	// The previous Ed25519 key signs the announcing Update to hosts whose signature
	// profile is RFC 9421 Ed25519: they may have cached only that key.
	if old := p.data[keys.Ed25519PrivateKey]; len(old) > 0 {
		data[keys.PreviousEd25519PrivateKey] = old
	}
	p.pair, p.data, p.createdAt, p.changed = pair, data, now, true
	p.previousExpiresAt = now.Add(keyOverlap(actor))
	p.reason, p.why = fedv1.ReasonKeysRotated, why
	return nil
}

// nextCheck is when the keys next need attention: the end of the overlap window or the
// next scheduled rotation.
func (p *keyPlan) nextCheck(actor *actorT, now time.Time) time.Duration {
	var next time.Time
	if !p.previousExpiresAt.IsZero() {
		next = p.previousExpiresAt
	}
	if kp := actor.Spec.KeyPolicy; kp != nil && kp.RotationPeriod != nil {
		due := p.createdAt.Add(kp.RotationPeriod.Duration)
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	if next.IsZero() {
		return 0
	}
	if d := next.Sub(now); d > time.Second {
		return d
	}
	return time.Second
}

func (r *ActorKeyReconciler) desiredSecret(actor *actorT, name string, p *keyPlan) *corev1.Secret {
	ann := map[string]string{annotationKeysCreatedAt: p.createdAt.Format(time.RFC3339)}
	if !p.previousExpiresAt.IsZero() {
		ann[annotationPreviousKeysExpireAt] = p.previousExpiresAt.Format(time.RFC3339)
	}
	if p.rotatedFor != "" {
		ann[annotationRotatedFor] = p.rotatedFor
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: actor.Namespace, Annotations: ann,
			Labels: map[string]string{
				fedv1.LabelManagedBy: fedv1.ManagedByValue, fedv1.LabelActor: actor.Name,
				fedv1.LabelServer: actor.Spec.ServerRef.Name, fedv1.LabelComponent: labelComponentKeys,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: p.data,
	}
}

func rotationDue(actor *actorT, createdAt time.Time, now time.Time) bool {
	kp := actor.Spec.KeyPolicy
	return kp != nil && kp.RotationPeriod != nil && !now.Before(createdAt.Add(kp.RotationPeriod.Duration))
}

func keyOverlap(actor *actorT) time.Duration {
	if kp := actor.Spec.KeyPolicy; kp != nil && kp.Overlap != nil {
		return kp.Overlap.Duration
	}
	return defaultKeyOverlap
}

func parseTime(s string, def time.Time) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return def
	}
	return t
}

func copyData(in map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// SetupWithManager watches actors and the Secrets they own.
func (r *ActorKeyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("actorkeys").
		For(&actorT{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}).
		Complete(r)
}
