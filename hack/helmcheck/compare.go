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
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// object is one decoded manifest.
type object = map[string]any

// decode reads every document of a multi-document YAML stream; empty documents are skipped.
func decode(r io.Reader) ([]object, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []object
	for {
		var o object
		if err := dec.Decode(&o); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding manifest %d: %w", len(objs)+1, err)
		}
		if len(o) > 0 {
			objs = append(objs, o)
		}
	}
}

// key names an object the way a cluster does: kind (with its group), namespace and name.
func key(o object) string {
	api, _ := o["apiVersion"].(string)
	group := ""
	if i := strings.LastIndex(api, "/"); i >= 0 {
		group = api[:i]
	}
	kind, _ := o["kind"].(string)
	ns, _ := get(o, "metadata", "namespace").(string)
	name, _ := get(o, "metadata", "name").(string)
	k := kind
	if group != "" {
		k += "." + group
	}
	if ns != "" {
		return k + " " + ns + "/" + name
	}
	return k + " " + name
}

// get walks nested maps; it returns nil when a step is missing.
func get(o any, path ...string) any {
	for _, p := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[p]
	}
	return o
}

// labelPaths are the label maps where the chart may add labels to those of config/default
// (Helm's standard labels and the release, which lets two releases share a namespace); every
// label of config/default must be there with the same value.
func labelPaths(kind string) [][]string {
	paths := [][]string{{"metadata", "labels"}}
	switch kind {
	case "Deployment":
		paths = append(paths, []string{"spec", "selector", "matchLabels"}, []string{"spec", "template", "metadata", "labels"})
	case "Service":
		paths = append(paths, []string{"spec", "selector"})
	}
	return paths
}

// kindsOnlyInKustomize are kinds config/default renders and the chart must not: Helm
// installs into a release namespace that the user (or --create-namespace) creates.
var kindsOnlyInKustomize = map[string]bool{"Namespace": true}

// compare reports every difference between the objects of `kustomize build config/default`
// (want) and of `helm template --include-crds` with default values (got): a missing or extra
// object, and any field that differs, except that the chart may add labels and annotations.
func compare(want, got []object) []string {
	var diffs []string
	wantBy, gotBy := map[string]object{}, map[string]object{}
	for _, o := range want {
		if kind, _ := o["kind"].(string); kindsOnlyInKustomize[kind] {
			continue
		}
		wantBy[key(o)] = o
	}
	for _, o := range got {
		k := key(o)
		if _, dup := gotBy[k]; dup {
			diffs = append(diffs, k+": rendered twice by the chart")
		}
		gotBy[k] = o
	}
	for _, k := range sortedKeys(wantBy) {
		g, ok := gotBy[k]
		if !ok {
			diffs = append(diffs, k+": in config/default, missing from the chart")
			continue
		}
		diffs = append(diffs, compareObject(k, wantBy[k], g)...)
	}
	for _, k := range sortedKeys(gotBy) {
		if _, ok := wantBy[k]; !ok {
			diffs = append(diffs, k+": rendered by the chart, not in config/default")
		}
	}
	return diffs
}

// compareObject compares one pair: label maps as subsets, metadata annotations ignored,
// everything else equal.
func compareObject(k string, want, got object) []string {
	want, got = deepCopy(want).(object), deepCopy(got).(object)
	var diffs []string
	kind, _ := want["kind"].(string)
	for _, p := range labelPaths(kind) {
		wl, _ := get(want, p...).(map[string]any)
		gl, _ := get(got, p...).(map[string]any)
		if wl == nil && gl == nil {
			continue
		}
		for _, name := range sortedKeys(wl) {
			if gl == nil || !reflect.DeepEqual(wl[name], gl[name]) {
				diffs = append(diffs, fmt.Sprintf("%s: .%s[%q]: config/default has %v, the chart %v",
					k, strings.Join(p, "."), name, wl[name], lookup(gl, name)))
			}
		}
		del(want, p)
		del(got, p)
	}
	del(want, []string{"metadata", "annotations"})
	del(got, []string{"metadata", "annotations"})
	return append(diffs, diffValues(k, "", want, got)...)
}

// lookup is m[k], or "(none)" when m has no k.
func lookup(m map[string]any, k string) any {
	if v, ok := m[k]; ok {
		return v
	}
	return "(none)"
}

// del removes the field at path, if there is one.
func del(o object, path []string) {
	m, ok := get(o, path[:len(path)-1]...).(map[string]any)
	if ok {
		delete(m, path[len(path)-1])
	}
}

// diffValues lists the paths where two decoded values differ.
func diffValues(k, path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		var diffs []string
		for _, name := range sortedKeys(w) {
			gv, ok := g[name]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: %s.%s: config/default has %s, missing from the chart", k, path, name, brief(w[name])))
				continue
			}
			diffs = append(diffs, diffValues(k, path+"."+name, w[name], gv)...)
		}
		for _, name := range sortedKeys(g) {
			if _, ok := w[name]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: %s.%s: the chart has %s, config/default has none", k, path, name, brief(g[name])))
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			break
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, diffValues(k, fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if reflect.DeepEqual(want, got) {
			return nil
		}
	}
	if path == "" {
		path = "."
	}
	return []string{fmt.Sprintf("%s: %s: config/default has %s, the chart %s", k, path, brief(want), brief(got))}
}

// brief prints a value on one line, cut to a readable length.
func brief(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
