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

// Command helmcheck compares the Helm chart's rendering with the kustomize install, so that
// the two never disagree (hack/check-helm.sh runs it on every `make test`):
//
//	helmcheck compare <kustomize build config/default> <helm template --include-crds>
//	helmcheck servicemonitor <helm template --set serviceMonitor.enabled=true>
//
// It is hand-written rather than a plain diff because the chart legitimately differs in
// three ways (it adds Helm's labels, selects by release, and leaves the Namespace to the
// user); everything else (names, namespaces, RBAC rules, the manager's containers, probes,
// security contexts, resources, the Service, the CRDs) must be equal field by field.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: helmcheck compare KUSTOMIZE.yaml HELM.yaml | helmcheck servicemonitor HELM.yaml")
		os.Exit(2)
	}
	var diffs []string
	var err error
	switch os.Args[1] {
	case "compare":
		if len(os.Args) != 4 {
			fmt.Fprintln(os.Stderr, "usage: helmcheck compare KUSTOMIZE.yaml HELM.yaml")
			os.Exit(2)
		}
		var want, got []object
		if want, err = decodeFile(os.Args[2]); err == nil {
			if got, err = decodeFile(os.Args[3]); err == nil {
				diffs = compare(want, got)
				if len(want) == 0 || len(got) == 0 {
					diffs = append(diffs, "nothing rendered")
				}
			}
		}
	case "servicemonitor":
		var objs []object
		if objs, err = decodeFile(os.Args[2]); err == nil {
			diffs = checkServiceMonitor(objs)
		}
	default:
		fmt.Fprintf(os.Stderr, "helmcheck: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helmcheck:", err)
		os.Exit(1)
	}
	for _, d := range diffs {
		fmt.Fprintln(os.Stderr, d)
	}
	if len(diffs) > 0 {
		fmt.Fprintf(os.Stderr, "helmcheck %s: %d difference(s)\n", os.Args[1], len(diffs))
		os.Exit(1)
	}
}

func decodeFile(path string) ([]object, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	objs, err := decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return objs, nil
}
