//go:build e2e

/*
Copyright 2026 The Fedforge Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// The address ranges of hack/local-cluster.sh (POD_SUBNET, SERVICE_CIDR). Servers must be
// allowed to reach them: by default a server refuses private addresses (SSRF protection),
// and in-cluster peers live there.
const (
	podCIDR     = "10.244.0.0/24"
	serviceCIDR = "10.96.0.0/16"
)

// kubectlPath is KUBECTL (make test-e2e sets the one built with the cluster), else the
// kubectl in PATH.
func kubectlPath() string {
	if k := os.Getenv("KUBECTL"); k != "" {
		return k
	}
	return "kubectl"
}

// run runs a command in dir, streaming its output into the spec's log, and fails the spec
// when it fails.
func run(ctx context.Context, dir, name string, args ...string) {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
	fmt.Fprintf(GinkgoWriter, "$ %s %s\n", name, strings.Join(args, " "))
	Expect(cmd.Run()).To(Succeed(), "%s %s", name, strings.Join(args, " "))
}

// kubectl runs kubectl with stdin and returns its standard output.
func kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, kubectlPath(), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// apply applies manifests in a namespace with server-side apply, as a user would.
func apply(ctx context.Context, namespace, manifests string) {
	GinkgoHelper()
	out, err := kubectl(ctx, manifests, "apply", "--server-side", "-n", namespace, "-f", "-")
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprint(GinkgoWriter, out)
}

// createNamespace creates a namespace for one scenario and deletes it when the scenario
// ends, waiting until it is gone (finalizers of Fedforge objects run while the operator
// still does).
func createNamespace(ctx context.Context, name string) {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"fedforge.dev/e2e": "true"}}}
	Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, ns))).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		if os.Getenv("E2E_KEEP_DEPLOY") == "1" {
			return
		}
		Expect(client.IgnoreNotFound(k8s.Delete(ctx, ns))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(ns), &corev1.Namespace{}))
		}).WithContext(ctx).Should(BeTrue(), "namespace %s not deleted", name)
	}, NodeTimeout(3*time.Minute))
}

// deploymentAvailable reports whether a Deployment is rolled out and Available.
func deploymentAvailable(dep *appsv1.Deployment) bool {
	if dep.Status.ObservedGeneration < dep.Generation || dep.Status.UpdatedReplicas < *dep.Spec.Replicas {
		return false
	}
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// serverService finds the Service the operator made for a FederationServer by its labels,
// so that the suite does not depend on how children are named.
func serverService(ctx context.Context, g Gomega, namespace, server string) *corev1.Service {
	svcs := &corev1.ServiceList{}
	g.Expect(k8s.List(ctx, svcs, client.InNamespace(namespace), client.MatchingLabels{fedv1.LabelServer: server})).To(Succeed())
	g.Expect(svcs.Items).To(HaveLen(1), "Services of FederationServer %s/%s", namespace, server)
	return &svcs.Items[0]
}

// serviceURL is http://<cluster IP>:<port>: the host reaches Services through kube-proxy's
// rules, like a pod would, without an Ingress or a port-forward.
func serviceURL(svc *corev1.Service) string {
	return "http://" + net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
}

// request sends one HTTP request to url with the Host header of the instance (the test
// process cannot resolve in-cluster names; it talks to the Service's cluster IP), and
// returns status and body.
func request(ctx context.Context, method, url, host string, headers map[string]string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Host = host
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b, err
}

// get fetches url with the Host header of the instance, and returns status and body.
func get(ctx context.Context, url, host, accept string) (int, []byte, error) {
	var headers map[string]string
	if accept != "" {
		headers = map[string]string{"Accept": accept}
	}
	return request(ctx, http.MethodGet, url, host, headers, nil)
}

// getJSON fetches a JSON document and decodes it into a map.
func getJSON(ctx context.Context, g Gomega, url, host, accept string) map[string]any {
	status, body, err := get(ctx, url, host, accept)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status).To(Equal(http.StatusOK), "GET %s (Host %s): %s", url, host, body)
	doc := map[string]any{}
	g.Expect(json.Unmarshal(body, &doc)).To(Succeed(), "GET %s: %s", url, body)
	return doc
}

// dumpDiagnostics writes objects, events and logs into the spec's output.
func dumpDiagnostics(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	cmds := [][]string{
		{"get", "nodes,pods,deployments,services,pvc", "-A", "-o", "wide"},
		{"get", "federation", "-A", "-o", "wide"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
		{"-n", managerNamespace, "logs", "deployment/" + managerDeployment, "--tail=200"},
	}
	// kubectl logs has no --all-namespaces: one call per namespace with a server's pods.
	out, _ := kubectl(ctx, "", "get", "pods", "-A", "-l", fedv1.LabelServer,
		"-o", `jsonpath={range .items[*]}{.metadata.namespace}{"\n"}{end}`)
	seen := map[string]bool{}
	for _, ns := range strings.Fields(out) {
		if !seen[ns] {
			seen[ns] = true
			cmds = append(cmds, []string{"-n", ns, "logs", "-l", fedv1.LabelServer, "--tail=200", "--prefix", "--max-log-requests=10"})
		}
	}
	for _, args := range cmds {
		out, err := kubectl(ctx, "", args...)
		fmt.Fprintf(GinkgoWriter, "\n### kubectl %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			fmt.Fprintf(GinkgoWriter, "(%v)\n", err)
		}
	}
	// The servers' own view of their queues (webhook events, deliveries, the received
	// log), through the API server's pod proxy to the metrics port.
	pods, _ := kubectl(ctx, "", "get", "pods", "-A", "-l", fedv1.LabelComponent+"=server",
		"-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}`)
	for _, p := range strings.Fields(pods) {
		ns, name, _ := strings.Cut(p, "/")
		path := "/api/v1/namespaces/" + ns + "/pods/" + name + ":9090/proxy/metrics"
		out, err := kubectl(ctx, "", "get", "--raw", path)
		fmt.Fprintf(GinkgoWriter, "\n### metrics of %s (fedforge_webhook, fedforge_delivery)\n", p)
		if err != nil {
			fmt.Fprintf(GinkgoWriter, "(%v)\n", err)
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if (strings.HasPrefix(line, "fedforge_webhook") || strings.HasPrefix(line, "fedforge_delivery")) && !strings.Contains(line, "_bucket") {
				fmt.Fprintln(GinkgoWriter, line)
			}
		}
	}
	if dir := os.Getenv("E2E_CLUSTER_LOGS"); dir != "" {
		fmt.Fprintf(GinkgoWriter, "\nlogs of the cluster's components: %s\n", filepath.Clean(dir))
	}
}
