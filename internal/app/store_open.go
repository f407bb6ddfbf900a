package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// storeRetry bounds the wait between two attempts to open the store.
var storeRetry = struct{ first, max time.Duration }{time.Second, 30 * time.Second}

// openStore opens the server's store and claims it for the FederationServer's host,
// retrying with backoff (1 s doubling to 30 s) until it succeeds or ctx ends, and reports
// each outcome in the FederationServer's StoreReady condition. A wrong password, a
// database that is down, a schema from a newer Fedforge or a database that belongs to
// another server therefore shows in `kubectl get federationserver` with the driver's
// message (the operator folds it into Ready), instead of a pod that crash-loops without
// a reason. Until the store is open, listen answers /healthz (the process is alive: the
// liveness probe must not restart a pod that waits for its database) and 503 with
// Retry-After to everything else, /readyz included, so the pod is not ready and peers
// retry later.
func openStore(ctx context.Context, cfg *rest.Config, key types.NamespacedName, dsn, listen string) (store.Store, error) {
	log := logf.FromContext(ctx).WithValues("server", key.String())
	k, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("server: API client: %w", err)
	}
	if listen != "" {
		stop, err := serveWaiting(listen)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	wait := storeRetry.first
	for {
		st, host, err := tryOpenStore(ctx, k, key, dsn)
		reportStore(ctx, k, key, err)
		if err == nil {
			log.Info("store opened", "host", host)
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("server: opening the store: %w", err)
		}
		log.Error(err, "opening the store failed; retrying", "in", wait.String())
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("server: opening the store: %w", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, storeRetry.max)
	}
}

// tryOpenStore makes one attempt: read the server's host, open, claim. When the server's
// spec names a PostgreSQL DSN Secret, the DSN is read from it live on every attempt (the
// environment variable the pod started with is only the fallback), so that fixing a wrong
// password in the Secret heals a waiting server without restarting its pods.
func tryOpenStore(ctx context.Context, k client.Client, key types.NamespacedName, dsn string) (store.Store, string, error) {
	var fs fedv1.FederationServer
	if err := k.Get(ctx, key, &fs); err != nil {
		return nil, "", fmt.Errorf("reading FederationServer %s: %w", key, err)
	}
	if st := fs.Spec.Storage; st != nil && st.Postgres != nil {
		ref := st.Postgres.DSNSecretRef
		name := ref.Key
		if name == "" {
			name = "dsn"
		}
		var sec corev1.Secret
		if err := k.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: ref.Name}, &sec); err != nil {
			return nil, fs.Spec.Host, fmt.Errorf("reading the DSN Secret %s: %w", ref.Name, err)
		}
		v, ok := sec.Data[name]
		if !ok || len(v) == 0 {
			return nil, fs.Spec.Host, fmt.Errorf("the DSN Secret %s has no key %q", ref.Name, name)
		}
		dsn = string(v)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, fs.Spec.Host, err
	}
	if err := st.ClaimHost(ctx, fs.Spec.Host); err != nil {
		st.Close()
		return nil, fs.Spec.Host, err
	}
	return st, fs.Spec.Host, nil
}

// reportStore writes StoreReady from the outcome of one attempt, when it changes. A
// failure to write is logged, not returned: the store matters more than its report.
func reportStore(ctx context.Context, k client.Client, key types.NamespacedName, openErr error) {
	cond := metav1.Condition{Type: fedv1.ConditionStoreReady, Status: metav1.ConditionTrue, Reason: fedv1.ReasonStoreOpened,
		Message: "the store is open and belongs to this server"}
	if openErr != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, storeFailureReason(openErr), openErr.Error()
		if len(cond.Message) > 1000 {
			cond.Message = cond.Message[:997] + "..."
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		var fs fedv1.FederationServer
		if err := k.Get(ctx, key, &fs); err != nil {
			if !apierrors.IsNotFound(err) {
				logf.FromContext(ctx).Error(err, "reading the FederationServer to report the store")
			}
			return
		}
		base := fs.DeepCopy()
		cond.ObservedGeneration = fs.Generation
		if !meta.SetStatusCondition(&fs.Status.Conditions, cond) {
			return
		}
		err := k.Status().Patch(ctx, &fs, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if err == nil || !apierrors.IsConflict(err) {
			if err != nil {
				logf.FromContext(ctx).Error(err, "reporting the store in the FederationServer's status")
			}
			return
		}
	}
}

// serveWaiting answers on listen while the store is being opened: 200 on /healthz, 503
// with Retry-After elsewhere. stop closes it, so that the server proper can listen.
func serveWaiting(listen string) (stop func(), err error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", listen, err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok: waiting for the store\n"))
			return
		}
		w.Header().Set("Retry-After", "30")
		http.Error(w, "the server is waiting for its store", http.StatusServiceUnavailable)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}

// storeFailureReason is the StoreReady reason of an error from tryOpenStore.
func storeFailureReason(err error) string {
	switch {
	case errors.Is(err, store.ErrSchemaTooNew):
		return fedv1.ReasonSchemaTooNew
	case errors.Is(err, store.ErrHostMismatch):
		return fedv1.ReasonStoreHostMismatch
	}
	return fedv1.ReasonStoreUnavailable
}
