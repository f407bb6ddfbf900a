package controllers_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// gitopsManager is the field manager a GitOps tool applies with (Argo CD uses its own
// name, Flux "kustomize-controller"); any name other than the operator's will do.
const gitopsManager = "gitops-test"

// samples reads the objects of config/samples, in the kustomization's order.
func samples() []*unstructured.Unstructured {
	dir := filepath.Join("..", "config", "samples")
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var k struct {
		Resources []string `json:"resources"`
	}
	Expect(yaml.Unmarshal(raw, &k)).To(Succeed())
	var out []*unstructured.Unstructured
	for _, f := range k.Resources {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		Expect(err).NotTo(HaveOccurred())
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				Expect(err.Error()).To(Equal("EOF"))
				break
			}
			if len(u.Object) > 0 {
				out = append(out, u)
			}
		}
	}
	Expect(len(out)).To(BeNumerically(">=", 5))
	return out
}

// withoutVolatile drops what a no-op apply may legitimately differ in.
func withoutVolatile(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
	return c.Object
}

var _ = Describe("GitOps", func() {
	It("shows no drift when the samples are applied again after the controllers reconciled, and leaves spec to its owner", func() {
		ns := newNamespace()
		apply := func(u *unstructured.Unstructured, opts ...client.PatchOption) *unstructured.Unstructured {
			c := u.DeepCopy()
			c.SetNamespace(ns)
			Expect(k8s.Patch(ctx, c, client.Apply, append([]client.PatchOption{client.FieldOwner(gitopsManager), client.ForceOwnership}, opts...)...)).To(Succeed(), "applying %s %s", u.GetKind(), u.GetName())
			return c
		}
		objs := samples()
		for _, u := range objs {
			apply(u)
		}
		// Reconciled: every Fedforge object has a Ready condition at its generation, or
		// (the Subscription, whose exchange needs a running server) its ActorFound.
		for _, u := range objs {
			if !strings.HasPrefix(u.GetAPIVersion(), "federation.fedforge.dev/") {
				continue
			}
			Eventually(func(g Gomega) {
				live := &unstructured.Unstructured{}
				live.SetGroupVersionKind(u.GroupVersionKind())
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: u.GetName()}, live)).To(Succeed())
				conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
				g.Expect(conds).NotTo(BeEmpty(), "%s %s has no conditions yet", u.GetKind(), u.GetName())
				if u.GetKind() == "FederatedActor" {
					g.Expect(fmt.Sprint(conds)).To(ContainSubstring("KeyReady"), "the key controller has not written its keys yet")
				}
			}).Should(Succeed())
		}
		for _, u := range objs {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(u.GroupVersionKind())
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: u.GetName()}, live)).To(Succeed())
			// `kubectl diff --server-side`: a dry-run apply of the same manifest, compared
			// with the live object.
			dry := apply(u, client.DryRunAll)
			Expect(cmp.Diff(withoutVolatile(live), withoutVolatile(dry))).To(BeEmpty(), "%s %s drifts", u.GetKind(), u.GetName())
			// Only the GitOps manager owns spec (and data): the operator writes status,
			// finalizers and its own annotations, never a field the user owns.
			for _, mf := range live.GetManagedFields() {
				if mf.Manager == gitopsManager || mf.Subresource != "" || mf.FieldsV1 == nil {
					continue
				}
				fields := string(mf.FieldsV1.Raw)
				for _, owned := range []string{`"f:spec"`, `"f:data"`, `"f:stringData"`} {
					Expect(fields).NotTo(ContainSubstring(owned), "%s %s: manager %q (%s) owns %s: %s", u.GetKind(), u.GetName(), mf.Manager, mf.Operation, owned, fields)
				}
			}
		}
	})
})
