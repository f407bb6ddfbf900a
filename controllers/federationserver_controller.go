package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// The server's workload.
const (
	labelComponentServer = "server"
	annotationSpecHash   = "federation.fedforge.dev/spec-hash"
	serverPort           = 8080
	// serverShutdownDelay is how long a stopping server replica keeps serving, not ready,
	// so that kube-proxy stops sending it connections first (rolling updates, evictions).
	serverShutdownDelay = 5 * time.Second
	// internalPort serves the delivery queue to delivery Jobs (never through the Ingress).
	internalPort = 8081
	// metricsPort serves the server's Prometheus metrics (delivery, webhooks, feeds).
	metricsPort           = 9090
	serverDataMountPath   = "/var/lib/fedforge"
	defaultSQLiteFileName = "fedforge.db"
)

// FederationServerReconciler runs one `fedforge server` workload per FederationServer: a
// ServiceAccount with the Role the server needs, a PersistentVolumeClaim for SQLite, a
// Deployment, a Service and, when asked, an Ingress. In local mode (make run) the server
// runs as a process beside the manager, so only status is written.
type FederationServerReconciler struct {
	client.Client
	// LocalMode skips the workload: `make run` starts the server process itself.
	LocalMode bool
	// DefaultImage is the server image when spec.image is empty (the operator's own).
	DefaultImage string
}

// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federationservers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federationservers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federationservers/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts;persistentvolumeclaims;configmaps,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=subscriptions;subscriptions/status,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federationpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Reconcile makes the server's workload match its spec and reports readiness. Status is
// written once, on the way out: a failure turns WorkloadReady and Ready False with its
// reason and message (see statusOnExit).
func (r *FederationServerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	srv := &serverT{}
	if err := r.Get(ctx, req.NamespacedName, srv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !srv.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // owned children are garbage collected
	}
	base := srv.DeepCopy()
	defer func() {
		res, err = statusOnExit(ctx, r.Client, srv, base, res, err, func() {
			setFailed(&srv.Status.Conditions, srv.Generation, err, fedv1.ConditionWorkloadReady, fedv1.ConditionReady)
		})
	}()
	srv.Status.URL = srv.BaseURL()
	if r.LocalMode {
		msg := "runs outside the cluster as a local process (make run); no workload is created"
		meta.SetStatusCondition(&srv.Status.Conditions, metav1.Condition{Type: fedv1.ConditionWorkloadReady, Status: metav1.ConditionTrue, Reason: fedv1.ReasonLocalMode, Message: msg, ObservedGeneration: srv.Generation})
		meta.SetStatusCondition(&srv.Status.Conditions, metav1.Condition{Type: fedv1.ConditionReady, Status: metav1.ConditionTrue, Reason: fedv1.ReasonLocalMode, Message: msg, ObservedGeneration: srv.Generation})
		srv.Status.ObservedGeneration = srv.Generation
		return ctrl.Result{}, nil
	}

	dep, err := r.applyWorkload(ctx, srv)
	if err != nil {
		return ctrl.Result{}, err
	}
	srv.Status.ReadyReplicas = dep.Status.ReadyReplicas
	meta.SetStatusCondition(&srv.Status.Conditions, metav1.Condition{Type: fedv1.ConditionWorkloadReady, Status: metav1.ConditionTrue, Reason: fedv1.ReasonReconciled,
		Message: "Deployment, Service and storage are in place", ObservedGeneration: srv.Generation})
	ready := metav1.Condition{Type: fedv1.ConditionReady, Status: metav1.ConditionTrue, Reason: fedv1.ReasonReconciled, ObservedGeneration: srv.Generation,
		Message: fmt.Sprintf("%d/%d replicas ready", dep.Status.ReadyReplicas, srv.Spec.Replicas)}
	upToDate := dep.Status.ObservedGeneration >= dep.Generation && dep.Status.UpdatedReplicas >= srv.Spec.Replicas
	switch {
	case !upToDate && dep.Status.ObservedGeneration >= dep.Generation:
		// A new pod template (a new image, a changed spec) is rolling out.
		ready.Status, ready.Reason = metav1.ConditionFalse, fedv1.ReasonRollingOut
		ready.Message = fmt.Sprintf("rolling out: %d/%d replicas updated, %d ready", dep.Status.UpdatedReplicas, srv.Spec.Replicas, dep.Status.ReadyReplicas)
	case dep.Status.ReadyReplicas < srv.Spec.Replicas || !upToDate:
		ready.Status, ready.Reason = metav1.ConditionFalse, fedv1.ReasonReplicasNotReady
	}
	// The server process reports its store (StoreReady); a store it cannot open is the
	// reason its replicas are not ready, and says why better than a replica count.
	if st := meta.FindStatusCondition(srv.Status.Conditions, fedv1.ConditionStoreReady); st != nil && st.Status == metav1.ConditionFalse {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, st.Reason, st.Message
	}
	meta.SetStatusCondition(&srv.Status.Conditions, ready)
	srv.Status.ObservedGeneration = srv.Generation
	return ctrl.Result{}, nil
}

// applyWorkload applies every object of the server's workload, removes an Ingress no
// longer asked for, and returns the Deployment as the cache has it.
func (r *FederationServerReconciler) applyWorkload(ctx context.Context, srv *serverT) (*appsv1.Deployment, error) {
	objs, err := r.desiredWorkload(srv)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if err := controllerutil.SetControllerReference(srv, o, r.Scheme()); err != nil {
			return nil, err
		}
		if err := applyObject(ctx, r.Client, o); err != nil {
			return nil, withReason(fedv1.ReasonApplyFailed, err)
		}
	}
	if srv.Spec.Ingress == nil {
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: serverChildName(srv)}}
		if err := r.Delete(ctx, ing); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("deleting Ingress %s/%s: %w", ing.Namespace, ing.Name, err)
		}
	}
	// Just applied, the Deployment may not be in the cache yet: it then counts as having
	// no ready replica, and its arrival in the cache (Owns) reconciles again.
	dep := &appsv1.Deployment{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: srv.Namespace, Name: serverChildName(srv)}, dep); client.IgnoreNotFound(err) != nil {
		return nil, fmt.Errorf("reading Deployment %s/%s: %w", srv.Namespace, serverChildName(srv), err)
	}
	return dep, nil
}

func serverChildName(srv *serverT) string { return childName(srv.Name, "server") }

func serverLabels(srv *serverT) map[string]string {
	return map[string]string{
		fedv1.LabelManagedBy: fedv1.ManagedByValue, fedv1.LabelServer: srv.Name,
		fedv1.LabelComponent: labelComponentServer, "app.kubernetes.io/name": "fedforge",
	}
}

// desiredWorkload returns every object the server needs, in dependency order.
func (r *FederationServerReconciler) desiredWorkload(srv *serverT) ([]client.Object, error) {
	name, ns, labels := serverChildName(srv), srv.Namespace, serverLabels(srv)
	om := func() metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels} }

	sa := &corev1.ServiceAccount{ObjectMeta: om()}
	role := &rbacv1.Role{ObjectMeta: om(), Rules: serverRules()}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: om(),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	svc := &corev1.Service{
		ObjectMeta: om(),
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intOrName("http")},
				{Name: "internal", Port: internalPort, TargetPort: intOrName("internal")},
			},
		},
	}
	objs := []client.Object{sa, role, binding}

	volumes, mounts, env := []corev1.Volume(nil), []corev1.VolumeMount(nil), []corev1.EnvVar{
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		deliveryTokenEnv(srv),
	}
	strategy := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
	if st := srv.Spec.Storage; st != nil && st.Postgres != nil {
		key := st.Postgres.DSNSecretRef.Key
		if key == "" {
			key = "dsn"
		}
		env = append(env, corev1.EnvVar{Name: "FEDFORGE_STORE_DSN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: st.Postgres.DSNSecretRef.Name}, Key: key}}})
	} else {
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: om(), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		}}
		pvc.Name = childName(srv.Name, "data")
		size := defaultSQLiteSize()
		if st != nil && st.SQLite != nil {
			if st.SQLite.Size != nil {
				size = *st.SQLite.Size
			}
			pvc.Spec.StorageClassName = st.SQLite.StorageClassName
		}
		pvc.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: size}
		objs = append(objs, pvc)
		volumes = append(volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "data", MountPath: serverDataMountPath})
		env = append(env, corev1.EnvVar{Name: "FEDFORGE_STORE_DSN", Value: "sqlite://" + serverDataMountPath + "/" + defaultSQLiteFileName})
		// One SQLite writer on a ReadWriteOnce volume: never run two pods at once.
		strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}

	image := srv.Spec.Image
	if image == "" {
		image = r.DefaultImage
	}
	hash, err := specHash(srv.Spec)
	if err != nil {
		return nil, err
	}
	replicas := srv.Spec.Replicas
	nonRoot, noEscalation, readOnly := true, false, true
	container := corev1.Container{
		Name:  "server",
		Image: image,
		Args:  serverArgs(srv),
		Env:   env,
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: serverPort}, {Name: "internal", ContainerPort: internalPort}, {Name: "metrics", ContainerPort: metricsPort}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intOrName("http")}},
			PeriodSeconds: 5},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intOrName("http")}},
			PeriodSeconds: 10, FailureThreshold: 6},
		VolumeMounts: mounts,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot: &nonRoot, AllowPrivilegeEscalation: &noEscalation, ReadOnlyRootFilesystem: &readOnly,
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	if srv.Spec.Resources != nil {
		container.Resources = *srv.Spec.Resources
	}
	fsGroup := int64(65532)
	dep := &appsv1.Deployment{
		ObjectMeta: om(),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{annotationSpecHash: hash}},
				Spec: corev1.PodSpec{
					ServiceAccountName: name,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: &nonRoot, FSGroup: &fsGroup,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{container},
					Volumes:    volumes,
				},
			},
		},
	}
	// At most one replica down at a time for voluntary disruptions (node drains): with
	// several replicas the others keep serving; with one, a drain still proceeds.
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: om(), Spec: policyv1.PodDisruptionBudgetSpec{
		MaxUnavailable: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}}}
	objs = append(objs, dep, svc, pdb)
	if ing := srv.Spec.Ingress; ing != nil {
		objs = append(objs, desiredIngress(srv, om(), name))
	}
	return objs, nil
}

func desiredIngress(srv *serverT, om metav1.ObjectMeta, svcName string) *networkingv1.Ingress {
	spec := srv.Spec.Ingress
	om.Annotations = spec.Annotations
	pathType := networkingv1.PathTypePrefix
	host := hostOnly(srv.Spec.Host)
	ing := &networkingv1.Ingress{ObjectMeta: om, Spec: networkingv1.IngressSpec{
		IngressClassName: spec.ClassName,
		Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pathType, Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: svcName, Port: networkingv1.ServiceBackendPort{Name: "http"}}}}},
		}}}},
	}}
	if spec.TLSSecretName != "" {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: spec.TLSSecretName}}
	}
	return ing
}

// serverRules is what `fedforge server` may do in its namespace: read its configuration
// and keys, and turn Follows into Subscriptions. The manager holds every one of these
// verbs itself, as RBAC requires of whoever grants them.
func serverRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{fedv1.GroupVersion.Group}, Resources: []string{"federationservers", "federationpolicies"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{fedv1.GroupVersion.Group}, Resources: []string{"federatedactors"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{fedv1.GroupVersion.Group}, Resources: []string{"subscriptions"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{fedv1.GroupVersion.Group}, Resources: []string{"subscriptions/status", "federationpolicies/status", "federationservers/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets", "configmaps"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		// client-go's leader election records its transitions as core Events: without
		// this, every elected replica logged "events is forbidden" on taking the lease.
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// serverArgs are the flags of `fedforge server` for srv. Every replica serves HTTP; one
// elected replica runs the exchanges.
func serverArgs(srv *fedv1.FederationServer) []string {
	args := []string{"server", "--server=" + srv.Namespace + "/" + srv.Name, "--public-host=" + srv.Spec.Host, fmt.Sprintf("--listen=:%d", serverPort),
		fmt.Sprintf("--internal-listen=:%d", internalPort), fmt.Sprintf("--metrics-bind-address=:%d", metricsPort), "--leader-elect",
		"--shutdown-delay=" + serverShutdownDelay.String()}
	for _, c := range srv.Spec.AllowedPrivateCIDRs {
		args = append(args, "--allowed-cidr="+c)
	}
	if srv.Spec.Scheme == fedv1.SchemeHTTP {
		args = append(args, "--allow-http")
	}
	if d := srv.Spec.Delivery; d != nil && d.InProcess != nil && !*d.InProcess {
		args = append(args, "--in-process-delivery=false")
	}
	if d := srv.Spec.Delivery; d != nil && d.Lease != nil {
		args = append(args, "--delivery-lease="+d.Lease.Duration.String())
	}
	return args
}

// specHash changes whenever the spec changes, and rolls the Deployment with it.
func specHash(spec fedv1.FederationServerSpec) (string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// storeReadyChanged lets a change of the StoreReady condition, which the server process
// writes, reach Reconcile, so that Ready follows the store without a spec change.
var storeReadyChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*serverT)
	n, ok2 := e.ObjectNew.(*serverT)
	if !ok1 || !ok2 {
		return false
	}
	a := meta.FindStatusCondition(o.Status.Conditions, fedv1.ConditionStoreReady)
	b := meta.FindStatusCondition(n.Status.Conditions, fedv1.ConditionStoreReady)
	if a == nil || b == nil {
		return a != b
	}
	return a.Status != b.Status || a.Reason != b.Reason || a.Message != b.Message
}}

// SetupWithManager watches servers and everything they own.
func (r *FederationServerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("federationserver").
		For(&serverT{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, storeReadyChanged)))
	if !r.LocalMode {
		b = b.Owns(&appsv1.Deployment{}).Owns(&corev1.Service{}).Owns(&corev1.ServiceAccount{}).
			Owns(&corev1.PersistentVolumeClaim{}).Owns(&networkingv1.Ingress{}).
			Owns(&rbacv1.Role{}).Owns(&rbacv1.RoleBinding{}).Owns(&policyv1.PodDisruptionBudget{})
	}
	return b.Complete(r)
}
