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

package main

import (
	"strings"
	"testing"
)

// kustomizeOut is a cut-down `kustomize build config/default`.
const kustomizeOut = `
apiVersion: v1
kind: Namespace
metadata:
  name: fedforge-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: fedforge-manager-role
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fedforge-controller-manager
  namespace: fedforge-system
  labels: {app.kubernetes.io/name: fedforge}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: fedforge}
  template:
    metadata:
      labels: {app.kubernetes.io/name: fedforge}
    spec:
      containers:
      - name: manager
        image: fedforge:dev
        args: [manager, --leader-elect]
        securityContext: {readOnlyRootFilesystem: true}
---
apiVersion: v1
kind: Service
metadata:
  name: fedforge-controller-manager-metrics
  namespace: fedforge-system
  labels: {app.kubernetes.io/name: fedforge}
spec:
  selector: {app.kubernetes.io/name: fedforge}
  ports:
  - {name: metrics, port: 8080, targetPort: metrics}
`

// helmOut is the same install as the chart renders it: more labels, no Namespace.
const helmOut = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: fedforge-manager-role
  labels: {helm.sh/chart: fedforge-0.1.0}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fedforge-controller-manager
  namespace: fedforge-system
  labels: {app.kubernetes.io/name: fedforge, app.kubernetes.io/instance: fedforge}
  annotations: {meta.helm.sh/release-name: fedforge}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: fedforge, app.kubernetes.io/instance: fedforge}
  template:
    metadata:
      labels: {app.kubernetes.io/name: fedforge, app.kubernetes.io/instance: fedforge}
    spec:
      containers:
      - name: manager
        image: fedforge:dev
        args: [manager, --leader-elect]
        securityContext: {readOnlyRootFilesystem: true}
---
apiVersion: v1
kind: Service
metadata:
  name: fedforge-controller-manager-metrics
  namespace: fedforge-system
  labels: {app.kubernetes.io/name: fedforge, app.kubernetes.io/instance: fedforge}
spec:
  selector: {app.kubernetes.io/name: fedforge, app.kubernetes.io/instance: fedforge}
  ports:
  - {name: metrics, port: 8080, targetPort: metrics}
`

func mustDecode(t *testing.T, s string) []object {
	t.Helper()
	objs, err := decode(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestCompareAcceptsTheChartsExtraLabels(t *testing.T) {
	if diffs := compare(mustDecode(t, kustomizeOut), mustDecode(t, helmOut)); len(diffs) > 0 {
		t.Fatalf("want no differences, got:\n%s", strings.Join(diffs, "\n"))
	}
}

// Each drift must be reported, naming the object and the field.
func TestCompareReportsDrift(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"RBAC verb dropped", "verbs: [get, list, watch]", "verbs: [get, list]",
			"ClusterRole.rbac.authorization.k8s.io fedforge-manager-role: .rules[0].verbs: config/default has [get list watch], the chart [get list]"},
		{"argument dropped", "args: [manager, --leader-elect]", "args: [manager]",
			"Deployment.apps fedforge-system/fedforge-controller-manager: .spec.template.spec.containers[0].args"},
		{"security context changed", "securityContext: {readOnlyRootFilesystem: true}", "securityContext: {readOnlyRootFilesystem: false}",
			".spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem: config/default has true, the chart false"},
		{"extra field", "image: fedforge:dev", "image: fedforge:dev\n        imagePullPolicy: Always",
			".spec.template.spec.containers[0].imagePullPolicy: the chart has Always, config/default has none"},
		{"selector label missing", "selector: {app.kubernetes.io/name: fedforge, app.kubernetes.io/instance: fedforge}", "selector: {app.kubernetes.io/instance: fedforge}",
			`Service fedforge-system/fedforge-controller-manager-metrics: .spec.selector["app.kubernetes.io/name"]: config/default has fedforge, the chart (none)`},
		{"port renamed", "{name: metrics, port: 8080, targetPort: metrics}", "{name: http, port: 8080, targetPort: metrics}",
			".spec.ports[0].name: config/default has metrics, the chart http"},
		{"object renamed", "name: fedforge-manager-role", "name: manager-role",
			"ClusterRole.rbac.authorization.k8s.io fedforge-manager-role: in config/default, missing from the chart"},
		{"other namespace", "  namespace: fedforge-system\n  labels: {app.kubernetes.io/name: fedforge, app.kubernetes.io/instance: fedforge}\nspec:\n  selector: {", "  namespace: default\n  labels: {app.kubernetes.io/name: fedforge, app.kubernetes.io/instance: fedforge}\nspec:\n  selector: {",
			"Service default/fedforge-controller-manager-metrics: rendered by the chart, not in config/default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(helmOut, tc.old) {
				t.Fatalf("test case does not apply: %q not in helmOut", tc.old)
			}
			drifted := strings.Replace(helmOut, tc.old, tc.new, 1)
			diffs := compare(mustDecode(t, kustomizeOut), mustDecode(t, drifted))
			for _, d := range diffs {
				if strings.Contains(d, tc.want) {
					return
				}
			}
			t.Fatalf("want a difference containing %q, got:\n%s", tc.want, strings.Join(diffs, "\n"))
		})
	}
}

func TestCompareRefusesANamespaceInTheChart(t *testing.T) {
	ns := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fedforge-system\n---\n"
	diffs := compare(mustDecode(t, kustomizeOut), mustDecode(t, ns+helmOut))
	if len(diffs) != 1 || !strings.Contains(diffs[0], "Namespace fedforge-system: rendered by the chart") {
		t.Fatalf("want the chart's Namespace reported, got %q", diffs)
	}
}

const monitor = `
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: fedforge-controller-manager-metrics
  namespace: fedforge-system
spec:
  namespaceSelector: {matchNames: [fedforge-system]}
  selector:
    matchLabels: {app.kubernetes.io/name: fedforge, app.kubernetes.io/instance: fedforge}
  endpoints:
  - {port: metrics, path: /metrics}
`

func TestServiceMonitorSelectsTheMetricsService(t *testing.T) {
	if diffs := checkServiceMonitor(mustDecode(t, helmOut+monitor)); len(diffs) > 0 {
		t.Fatalf("want no problems, got:\n%s", strings.Join(diffs, "\n"))
	}
	for _, tc := range []struct{ old, new, want string }{
		{"{port: metrics,", "{port: http,", "endpoint port http is not a port name of the Service"},
		{"matchLabels: {app.kubernetes.io/name: fedforge,", "matchLabels: {app.kubernetes.io/name: other,", "ServiceMonitor selects app.kubernetes.io/name=other"},
		{"matchNames: [fedforge-system]", "matchNames: [default]", "namespaceSelector.matchNames [default]"},
	} {
		diffs := checkServiceMonitor(mustDecode(t, helmOut+strings.Replace(monitor, tc.old, tc.new, 1)))
		if len(diffs) != 1 || !strings.Contains(diffs[0], tc.want) {
			t.Errorf("%s -> %s: want %q, got %q", tc.old, tc.new, tc.want, diffs)
		}
	}
	if diffs := checkServiceMonitor(mustDecode(t, helmOut)); len(diffs) != 1 {
		t.Errorf("without a ServiceMonitor: want one problem, got %q", diffs)
	}
}
