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

import "fmt"

// checkServiceMonitor checks what config/default cannot tell: that the chart's optional
// ServiceMonitor (serviceMonitor.enabled=true) would scrape the manager's metrics Service,
// i.e. it selects the Service's labels in the Service's namespace and names one of its ports.
func checkServiceMonitor(objs []object) []string {
	var monitors, services []object
	for _, o := range objs {
		switch o["kind"] {
		case "ServiceMonitor":
			monitors = append(monitors, o)
		case "Service":
			services = append(services, o)
		}
	}
	if len(monitors) != 1 || len(services) != 1 {
		return []string{fmt.Sprintf("want one ServiceMonitor and one Service, the chart rendered %d and %d", len(monitors), len(services))}
	}
	sm, svc := monitors[0], services[0]
	var diffs []string
	svcLabels, _ := get(svc, "metadata", "labels").(map[string]any)
	sel, _ := get(sm, "spec", "selector", "matchLabels").(map[string]any)
	if len(sel) == 0 {
		diffs = append(diffs, "ServiceMonitor: no spec.selector.matchLabels")
	}
	for _, k := range sortedKeys(sel) {
		if svcLabels[k] != sel[k] {
			diffs = append(diffs, fmt.Sprintf("ServiceMonitor selects %s=%v, the Service has %v", k, sel[k], lookup(svcLabels, k)))
		}
	}
	ns := get(svc, "metadata", "namespace")
	names, _ := get(sm, "spec", "namespaceSelector", "matchNames").([]any)
	if len(names) != 1 || names[0] != ns {
		diffs = append(diffs, fmt.Sprintf("ServiceMonitor: namespaceSelector.matchNames %v, want [%v]", names, ns))
	}
	ports := map[any]bool{}
	for _, p := range asSlice(get(svc, "spec", "ports")) {
		ports[get(p, "name")] = true
	}
	endpoints := asSlice(get(sm, "spec", "endpoints"))
	if len(endpoints) == 0 {
		diffs = append(diffs, "ServiceMonitor: no endpoints")
	}
	for _, e := range endpoints {
		if !ports[get(e, "port")] {
			diffs = append(diffs, fmt.Sprintf("ServiceMonitor: endpoint port %v is not a port name of the Service", get(e, "port")))
		}
	}
	return diffs
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
