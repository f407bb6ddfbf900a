//go:build !nolocal

package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// localPostgresManager is the field manager of the storage `fedforge local --postgres-dsn`
// sets on the served FederationServer. It is not the samples' manager (fedforge-local):
// with server-side apply each manager's apply is its whole intent, so a separate one lets
// a run without the flag take back exactly what a run with it added, and nothing else.
const localPostgresManager = "fedforge-local-postgres"

// localPostgresCheck bounds the check of --postgres-dsn at start: connect, migrate.
const localPostgresCheck = 30 * time.Second

// localDSNSecret is the name of the Secret holding the served server's DSN.
func localDSNSecret(server string) string { return server + "-local-postgres" }

// openLocalPostgres checks --postgres-dsn before anything starts: it must be a
// postgres:// URL that connects and migrates. A DSN that does not is refused with the
// reason, so that `fedforge local` never falls back to SQLite without saying so, and
// never waits in the server's retry loop for a database the user mistyped. The store is
// returned open, for claimLocalPostgres; error messages name the DSN with its password
// masked and never contain the password.
func openLocalPostgres(ctx context.Context, dsn string) (store.Store, error) {
	scheme, _, _ := strings.Cut(dsn, "://")
	if scheme != "postgres" && scheme != "postgresql" {
		return nil, errors.New("local: --postgres-dsn must be a postgres:// or postgresql:// URL " +
			"(such as postgres://user:password@127.0.0.1:5432/fedforge)")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // url.Error repeats the whole URL, password included
			err = ue.Err
		}
		return nil, fmt.Errorf("local: --postgres-dsn is not a valid URL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, localPostgresCheck)
	defer cancel()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, redactDSN(u, fmt.Errorf("local: --postgres-dsn %s: %w", u.Redacted(), err))
	}
	return st, nil
}

// claimLocalPostgres claims the store for the served FederationServer's host (as the
// server does when it opens it) and points the FederationServer at it: a
// Secret <name>-local-postgres holding the DSN and spec.storage.postgres naming it, the
// way a FederationServer selects PostgreSQL in a cluster. A database that belongs to
// another server is refused here, at start, with the server's reason.
func claimLocalPostgres(ctx context.Context, c client.Client, st store.Store, key types.NamespacedName, dsn string) error {
	u, _ := url.Parse(dsn) // parsed by openLocalPostgres
	var fs fedv1.FederationServer
	if err := c.Get(ctx, key, &fs); err != nil {
		return fmt.Errorf("local: reading FederationServer %s: %w", key, err)
	}
	if err := st.ClaimHost(ctx, fs.Spec.Host); err != nil {
		return redactDSN(u, fmt.Errorf("local: --postgres-dsn %s for %s: %w", u.Redacted(), fs.Spec.Host, err))
	}
	name := localDSNSecret(key.Name)
	secret := corev1ac.Secret(name, key.Namespace).WithType(corev1.SecretTypeOpaque).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": "fedforge-local"}).
		WithData(map[string][]byte{"dsn": []byte(dsn)})
	if err := c.Apply(ctx, secret, client.FieldOwner(localPostgresManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("local: writing the DSN Secret %s/%s: %w", key.Namespace, name, err)
	}
	storage := map[string]any{"postgres": map[string]any{"dsnSecretRef": map[string]any{"name": name, "key": "dsn"}}}
	if err := applyStorage(ctx, c, key, storage); err != nil {
		return fmt.Errorf("local: setting spec.storage.postgres of %s: %w", key, err)
	}
	return nil
}

// dropLocalPostgres undoes what a run with --postgres-dsn set, when this run has none:
// the storage it applied is withdrawn (the server is back on its SQLite file, as the
// user asked by leaving the flag out) and the Secret with the DSN's password is deleted.
// Storage the user's own manifests set is left alone: it belongs to another manager.
func dropLocalPostgres(ctx context.Context, c client.Client, key types.NamespacedName) error {
	if err := applyStorage(ctx, c, key, nil); err != nil {
		return fmt.Errorf("local: withdrawing spec.storage of %s set by an earlier --postgres-dsn: %w", key, err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: localDSNSecret(key.Name)}}
	if err := c.Delete(ctx, secret); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("local: deleting the DSN Secret %s/%s: %w", key.Namespace, secret.Name, err)
	}
	return nil
}

// applyStorage applies spec.storage = storage (nil: none) to the FederationServer as
// localPostgresManager.
func applyStorage(ctx context.Context, c client.Client, key types.NamespacedName, storage map[string]any) error {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": fedv1.GroupVersion.String(), "kind": "FederationServer",
		"metadata": map[string]any{"namespace": key.Namespace, "name": key.Name},
	}}
	if storage != nil {
		u.Object["spec"] = map[string]any{"storage": storage}
	}
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(localPostgresManager), client.ForceOwnership)
}

// redactDSN masks the DSN's password wherever it appears in err's message, in case a
// driver message repeats the connection string (pgx masks what it recognises, on a
// best-effort basis); errors.Is and errors.As still see the wrapped error.
func redactDSN(u *url.URL, err error) error {
	if u == nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		return err
	}
	msg := err.Error()
	for _, s := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), (&url.URL{User: url.UserPassword("", pw)}).User.String()[1:]} {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is an error whose message had a password masked.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
