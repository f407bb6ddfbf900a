package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/urls"
)

// Delivery Jobs.
const (
	// DeliveryTokenKey is the key of the delivery token in its Secret.
	DeliveryTokenKey = "token"
	// deliveryTokenEnvName passes the token to the server and to delivery Jobs.
	deliveryTokenEnvName  = "FEDFORGE_DELIVERY_TOKEN"
	labelComponentDeliver = "deliver"
	defaultJobThreshold   = 500
	// jobTTL keeps a finished Job (and its logs) for an hour.
	jobTTL = int32(3600)
	// jobDeadline bounds one Job; `fedforge deliver` stops itself sooner.
	jobDeadline   = int64(900)
	keysMountPath = "/var/run/fedforge/keys"
)

// DeliveryJobReconciler adds delivery Jobs to a server whose queue has many due
// deliveries (a large fan-out, or retries after an outage), one at a time. The Jobs
// lease batches from the server's internal queue endpoint with a token from a Secret
// this controller creates, and sign with the actors' key Secrets, mounted read-only.
type DeliveryJobReconciler struct {
	client.Client
	// DefaultImage runs Jobs of servers whose spec names no image.
	DefaultImage string
}

// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete

// Reconcile ensures the delivery token exists and starts a Job when enough is due.
// Status is written once, on the way out: DeliveryJobsReady is True when the token is in
// place and any Job asked for was created, False with the reason and message of the
// failure otherwise (see statusOnExit).
func (r *DeliveryJobReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	srv := &serverT{}
	if err := r.Get(ctx, req.NamespacedName, srv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !srv.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	base := srv.DeepCopy()
	defer func() {
		res, err = statusOnExit(ctx, r.Client, srv, base, res, err, func() {
			setFailed(&srv.Status.Conditions, srv.Generation, err, fedv1.ConditionDeliveryJobsReady)
		})
	}()
	if err := r.ensureToken(ctx, srv); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.startJob(ctx, srv); err != nil {
		return ctrl.Result{}, err
	}
	meta.SetStatusCondition(&srv.Status.Conditions, metav1.Condition{Type: fedv1.ConditionDeliveryJobsReady, Status: metav1.ConditionTrue,
		Reason: fedv1.ReasonReconciled, ObservedGeneration: srv.Generation,
		Message: fmt.Sprintf("delivery token Secret %s is in place; a Job starts when %d deliveries are due", DeliveryTokenSecretName(srv), jobThreshold(srv))})
	return ctrl.Result{}, nil
}

// startJob creates a delivery Job when the server's last report counts enough due
// deliveries and no Job of the server is running.
func (r *DeliveryJobReconciler) startJob(ctx context.Context, srv *serverT) error {
	d := srv.Status.Delivery
	if d == nil || d.ObservedAt == nil || d.Due < int64(jobThreshold(srv)) {
		return nil
	}
	var jobs batchv1.JobList
	if err := r.List(ctx, &jobs, client.InNamespace(srv.Namespace), client.MatchingLabels{
		fedv1.LabelServer: srv.Name, fedv1.LabelComponent: labelComponentDeliver}); err != nil {
		return fmt.Errorf("listing delivery Jobs: %w", err)
	}
	for i := range jobs.Items {
		if !jobFinished(&jobs.Items[i]) {
			return nil // one at a time; its end requeues us
		}
	}
	job, err := r.desiredJob(ctx, srv)
	if err != nil || job == nil {
		return err
	}
	if err := controllerutil.SetControllerReference(srv, job, r.Scheme()); err != nil {
		return err
	}
	if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		return withReason(fedv1.ReasonCreateFailed, fmt.Errorf("creating delivery Job %s/%s: %w", job.Namespace, job.Name, err))
	}
	return nil
}

func jobThreshold(srv *serverT) int32 {
	if d := srv.Spec.Delivery; d != nil && d.JobThreshold != nil {
		return *d.JobThreshold
	}
	return defaultJobThreshold
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// DeliveryTokenSecretName is the Secret holding the token Jobs use with the server's queue.
func DeliveryTokenSecretName(srv *fedv1.FederationServer) string {
	return childName(srv.Name, "delivery-token")
}

func deliveryTokenEnv(srv *serverT) corev1.EnvVar {
	return corev1.EnvVar{Name: deliveryTokenEnvName, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: DeliveryTokenSecretName(srv)}, Key: DeliveryTokenKey}}}
}

// ensureToken creates the token Secret once; it is never rewritten, so the server and
// running Jobs keep agreeing.
func (r *DeliveryJobReconciler) ensureToken(ctx context.Context, srv *serverT) error {
	var s corev1.Secret
	err := r.Get(ctx, client.ObjectKey{Namespace: srv.Namespace, Name: DeliveryTokenSecretName(srv)}, &s)
	if !apierrors.IsNotFound(err) {
		if err != nil {
			return fmt.Errorf("reading delivery token Secret: %w", err)
		}
		return nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	s = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: DeliveryTokenSecretName(srv), Labels: map[string]string{
			fedv1.LabelManagedBy: fedv1.ManagedByValue, fedv1.LabelServer: srv.Name, fedv1.LabelComponent: labelComponentDeliver}},
		Data: map[string][]byte{DeliveryTokenKey: []byte(hex.EncodeToString(b))},
	}
	if err := controllerutil.SetControllerReference(srv, &s, r.Scheme()); err != nil {
		return err
	}
	if err := r.Create(ctx, &s); err != nil && !apierrors.IsAlreadyExists(err) {
		return withReason(fedv1.ReasonCreateFailed, fmt.Errorf("creating delivery token Secret %s/%s: %w", s.Namespace, s.Name, err))
	}
	return nil
}

// desiredJob is one `fedforge deliver` run with every actor's keys mounted; nil when no
// actor has keys yet.
func (r *DeliveryJobReconciler) desiredJob(ctx context.Context, srv *serverT) (*batchv1.Job, error) {
	var actors fedv1.FederatedActorList
	if err := r.List(ctx, &actors, client.InNamespace(srv.Namespace), client.MatchingFields{indexActorServer: srv.Name}); err != nil {
		return nil, err
	}
	sort.Slice(actors.Items, func(i, j int) bool { return actors.Items[i].Name < actors.Items[j].Name })
	args := []string{"deliver",
		fmt.Sprintf("--queue-url=http://%s.%s.svc:%d/internal/delivery", serverChildName(srv), srv.Namespace, internalPort),
		"--keys-dir=" + keysMountPath, "--public-host=" + srv.Spec.Host}
	for _, c := range srv.Spec.AllowedPrivateCIDRs {
		args = append(args, "--allowed-cidr="+c)
	}
	if srv.Spec.Scheme == fedv1.SchemeHTTP {
		args = append(args, "--allow-http")
	}
	var sources []corev1.VolumeProjection
	for _, a := range actors.Items {
		if a.Status.KeySecretName == "" || !a.DeletionTimestamp.IsZero() {
			continue
		}
		dir := a.Name
		args = append(args, "--actor="+urls.ForActor(srv.BaseURL(), a.Spec.PreferredUsername).ID+"="+dir)
		var items []corev1.KeyToPath
		for _, k := range []string{keys.RSAPrivateKey, keys.RSAPublicKey, keys.Ed25519PrivateKey, keys.Ed25519PublicKey} {
			items = append(items, corev1.KeyToPath{Key: k, Path: dir + "/" + k})
		}
		sources = append(sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: a.Status.KeySecretName}, Items: items}})
	}
	if len(sources) == 0 {
		return nil, nil
	}
	image := srv.Spec.Image
	if image == "" {
		image = r.DefaultImage
	}
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	if d := srv.Spec.Delivery; d != nil && d.JobResources != nil {
		res = *d.JobResources
	}
	labels := map[string]string{fedv1.LabelManagedBy: fedv1.ManagedByValue, fedv1.LabelServer: srv.Name,
		fedv1.LabelComponent: labelComponentDeliver, "app.kubernetes.io/name": "fedforge"}
	ttl, deadline, backoff, mode := jobTTL, jobDeadline, int32(2), int32(0o440)
	nonRoot, noEscalation, readOnly, noToken, uid := true, false, true, false, int64(65532)
	// One name per queue observation: a Job is created at most once per report.
	name := childName(srv.Name, "deliver-"+strconv.FormatInt(srv.Status.Delivery.ObservedAt.Unix(), 36))
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: name, Labels: labels},
		Spec: batchv1.JobSpec{
			TTLSecondsAfterFinished: &ttl, ActiveDeadlineSeconds: &deadline, BackoffLimit: &backoff,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: &noToken,
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: &nonRoot, RunAsUser: &uid, FSGroup: &uid, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "deliver", Image: image, Args: args, Resources: res,
						Env: []corev1.EnvVar{deliveryTokenEnv(srv)},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &noEscalation, ReadOnlyRootFilesystem: &readOnly,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
						VolumeMounts: []corev1.VolumeMount{{Name: "keys", MountPath: keysMountPath, ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{Name: "keys", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
						Sources: sources, DefaultMode: &mode}}}},
				},
			},
		},
	}, nil
}

// deliveryChanged passes FederationServer updates whose delivery summary changed.
func deliveryChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*serverT), e.ObjectNew.(*serverT)
		return o.Generation != n.Generation || (n.Status.Delivery != nil && (o.Status.Delivery == nil ||
			!o.Status.Delivery.ObservedAt.Equal(n.Status.Delivery.ObservedAt)))
	}}
}

// SetupWithManager watches servers (spec and delivery reports) and the Jobs they own.
func (r *DeliveryJobReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("deliveryjob").
		For(&serverT{}, builder.WithPredicates(deliveryChanged())).
		Owns(&batchv1.Job{}).
		Owns(&corev1.Secret{}).
		Complete(r)
}
