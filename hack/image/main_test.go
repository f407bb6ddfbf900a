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
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildTwice builds the same image into two files and returns their paths.
func buildTwice(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	var outs []string
	for _, n := range []string{"a.tar", "b.tar"} {
		o := options{
			out: filepath.Join(dir, n), tag: "fedforge:test", entrypoint: "/app", cmd: "manager",
			user: "65532:65532", workdir: "/", arch: "amd64",
			files: stringList{bin + ":/app:0755"}, dirs: stringList{"/tmp:1777"},
			tags: stringList{"registry.example.org:5000/team/fedforge:v1"},
		}
		if err := build(o); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o.out)
	}
	return outs[0], outs[1]
}

func TestReproducible(t *testing.T) {
	a, b := buildTwice(t)
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Fatal("two builds of the same inputs differ")
	}
}

// TestReadableBothWays checks that the docker manifest.json (crane push, docker load) and
// the OCI layout (ctr import, skopeo oci-archive:) describe the same image digest.
func TestReadableBothWays(t *testing.T) {
	a, _ := buildTwice(t)
	tests := map[string]string{
		"short docker name":  "fedforge:test",
		"registry with port": "registry.example.org:5000/team/fedforge:v1",
	}
	dir := t.TempDir()
	untar(t, a, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d manifests, want 2", len(im.Manifests))
	}
	ociDigest := im.Manifests[0].Digest
	for n, ref := range tests {
		t.Run(n, func(t *testing.T) {
			tag, err := name.NewTag(ref)
			if err != nil {
				t.Fatal(err)
			}
			img, err := tarball.ImageFromPath(a, &tag)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/app" || cf.Created.Unix() != 1700000000 {
				t.Errorf("config: user %q entrypoint %v created %v", cf.Config.User, cf.Config.Entrypoint, cf.Created)
			}
			ociImg, err := idx.Image(ociDigest)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ociImg.ConfigName()
			got, _ := img.ConfigName()
			if got != want {
				t.Errorf("docker-archive config %s, OCI layout config %s", got, want)
			}
		})
	}
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
