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

// Command image builds a single-layer container image from files on disk, without a Docker
// engine, and writes it as an OCI image layout tarball that also carries a docker
// manifest.json, like `docker save` does since Docker 25. So `ctr images import` and
// `skopeo copy oci-archive:` keep the image's digest, and `docker load`, `crane push` and
// `skopeo copy docker-archive:` accept it too. The output is reproducible: every timestamp
// is SOURCE_DATE_EPOCH (0 when unset), entries are sorted, owners are numeric, so the same
// inputs give the same bytes and digest on any machine.
//
//	go run . -o bin/fedforge-image.tar -tag fedforge:dev -entrypoint /fedforge -cmd manager \
//	    -user 65532:65532 -file bin/fedforge-image-bin:/fedforge:0755
//	go run . digest bin/fedforge-image.tar
//
// See docs/cluster.md.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// options are the command-line flags of an image build.
type options struct {
	out, tag, entrypoint, cmd, user, workdir, arch string
	files, dirs, env, labels, tags                 stringList
	noPasswd                                       bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "digest" {
		if err := printDigests(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "image:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	fs := flag.NewFlagSet("image", flag.ExitOnError)
	fs.StringVar(&o.out, "o", "", "output tarball (docker-archive)")
	fs.StringVar(&o.tag, "tag", "", "image reference recorded in the tarball, e.g. fedforge:dev")
	fs.Var(&o.tags, "also-tag", "another reference for the same image (repeatable)")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "entrypoint, space separated")
	fs.StringVar(&o.cmd, "cmd", "", "default arguments, space separated")
	fs.StringVar(&o.user, "user", "65532:65532", "user the container runs as (numeric uid:gid)")
	fs.StringVar(&o.workdir, "workdir", "/", "working directory")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "image architecture")
	fs.Var(&o.files, "file", "SRC:DST[:MODE] a file to copy into the image, mode in octal (repeatable)")
	fs.Var(&o.dirs, "dir", "DST[:MODE] an empty directory, e.g. /tmp:1777 (repeatable)")
	fs.Var(&o.env, "env", "KEY=VALUE environment variable (repeatable)")
	fs.Var(&o.labels, "label", "KEY=VALUE image label (repeatable)")
	fs.BoolVar(&o.noPasswd, "no-passwd", false, "do not write /etc/passwd and /etc/group (root and nonroot 65532)")
	_ = fs.Parse(os.Args[1:])
	if o.out == "" || o.tag == "" || o.entrypoint == "" {
		fmt.Fprintln(os.Stderr, "image: -o, -tag and -entrypoint are required")
		fs.Usage()
		os.Exit(2)
	}
	if err := build(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// sourceDateEpoch is the one timestamp of the image: SOURCE_DATE_EPOCH, or the Unix epoch.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", v, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

func build(o options) error {
	created, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	entries, err := collect(o)
	if err != nil {
		return err
	}
	layerTar, err := writeTar(entries, created)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "hack/image", Comment: "fedforge image builder"},
	})
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = o.arch, "linux"
	cf.Created = v1.Time{Time: created}
	cf.Config.Entrypoint = strings.Fields(o.entrypoint)
	cf.Config.Cmd = strings.Fields(o.cmd)
	cf.Config.User = o.user
	cf.Config.WorkingDir = o.workdir
	cf.Config.Env = append([]string{"PATH=/", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}, o.env...)
	if len(o.labels) > 0 {
		cf.Config.Labels = map[string]string{}
		for _, l := range o.labels {
			k, v, _ := strings.Cut(l, "=")
			cf.Config.Labels[k] = v
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var tags []name.Tag
	for _, t := range append([]string{o.tag}, o.tags...) {
		ref, err := name.NewTag(t)
		if err != nil {
			return fmt.Errorf("tag %q: %w", t, err)
		}
		tags = append(tags, ref)
	}
	archive, err := ociArchive(img, tags, created)
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out+".tmp", archive, 0o644); err != nil {
		return err
	}
	if err := os.Rename(o.out+".tmp", o.out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", o.out, o.tag, digest)
	return nil
}

// ociArchive lays out img as an OCI image layout (oci-layout, index.json, blobs/sha256/)
// in a tar, with one index entry per tag, named the way containerd and Docker read them,
// and a docker-archive manifest.json that points at the same blobs.
func ociArchive(img v1.Image, tags []name.Tag, mtime time.Time) ([]byte, error) {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	mediaType, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	files := []entry{
		{path: "oci-layout", mode: 0o644, data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{path: "blobs/sha256/" + digest.Hex, mode: 0o644, data: rawManifest},
		{path: "blobs/sha256/" + cfgName.Hex, mode: 0o644, data: rawConfig},
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var layerPaths []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		files = append(files, entry{path: "blobs/sha256/" + d.Hex, mode: 0o644, data: data})
		layerPaths = append(layerPaths, "blobs/sha256/"+d.Hex)
	}
	type descriptor struct {
		MediaType   types.MediaType   `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	index := struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     types.MediaType `json:"mediaType"`
		Manifests     []descriptor    `json:"manifests"`
	}{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	type dockerManifest struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	docker := []dockerManifest{{Config: "blobs/sha256/" + cfgName.Hex, Layers: layerPaths}}
	for _, t := range tags {
		index.Manifests = append(index.Manifests, descriptor{
			MediaType: mediaType, Digest: digest.String(), Size: int64(len(rawManifest)),
			Annotations: map[string]string{
				"io.containerd.image.name":          fullName(t),
				"org.opencontainers.image.ref.name": t.TagStr(),
			},
		})
		docker[0].RepoTags = append(docker[0].RepoTags, shortName(t))
	}
	rawIndex, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	rawDocker, err := json.Marshal(docker)
	if err != nil {
		return nil, err
	}
	files = append(files,
		entry{path: "index.json", mode: 0o644, data: rawIndex},
		entry{path: "manifest.json", mode: 0o644, data: rawDocker},
		entry{path: "blobs", mode: 0o755, dir: true},
		entry{path: "blobs/sha256", mode: 0o755, dir: true})
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return writeTar(files, mtime)
}

// fullName is the normalized name containerd and the kubelet use:
// docker.io/library/fedforge:dev for fedforge:dev.
func fullName(t name.Tag) string {
	reg := t.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + t.RepositoryStr() + ":" + t.TagStr()
}

// shortName is the familiar form Docker records in RepoTags: fedforge:dev, not
// index.docker.io/library/fedforge:dev.
func shortName(t name.Tag) string {
	repo := t.RepositoryStr()
	if t.RegistryStr() != name.DefaultRegistry {
		repo = t.RegistryStr() + "/" + repo
	} else {
		repo = strings.TrimPrefix(repo, "library/")
	}
	return repo + ":" + t.TagStr()
}

// entry is one file or directory of the layer.
type entry struct {
	path string // absolute path inside the image
	mode int64
	dir  bool
	data []byte
}

func collect(o options) ([]entry, error) {
	byPath := map[string]entry{}
	add := func(e entry) {
		// Parent directories first, root-owned 0755, as a base image would have them.
		for d := path.Dir(e.path); d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = entry{path: d, mode: 0o755, dir: true}
			}
		}
		byPath[e.path] = e
	}
	for _, spec := range o.files {
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || len(parts) > 3 || !strings.HasPrefix(parts[1], "/") {
			return nil, fmt.Errorf("-file %q: want SRC:/DST[:MODE]", spec)
		}
		data, err := os.ReadFile(parts[0])
		if err != nil {
			return nil, err
		}
		mode := int64(0o644)
		if len(parts) == 3 {
			if mode, err = strconv.ParseInt(parts[2], 8, 64); err != nil {
				return nil, fmt.Errorf("-file %q: mode: %w", spec, err)
			}
		}
		add(entry{path: path.Clean(parts[1]), mode: mode, data: data})
	}
	for _, spec := range o.dirs {
		p, m, hasMode := strings.Cut(spec, ":")
		mode := int64(0o755)
		if hasMode {
			var err error
			if mode, err = strconv.ParseInt(m, 8, 64); err != nil {
				return nil, fmt.Errorf("-dir %q: mode: %w", spec, err)
			}
		}
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("-dir %q: want an absolute path", spec)
		}
		add(entry{path: path.Clean(p), mode: mode, dir: true})
	}
	if !o.noPasswd {
		// The same accounts as distroless: root, and nonroot (65532) that the manifests use.
		add(entry{path: "/etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")})
		add(entry{path: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")})
	}
	out := make([]entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

// writeTar writes the layer with fixed timestamps and numeric root ownership, so that its
// bytes depend only on the entries.
func writeTar(entries []entry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.path, "/"),
			Uid:     0,
			Gid:     0,
			Mode:    e.mode,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if !e.dir {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// printDigests prints, for each tarball, every image name it holds with the manifest
// digest, which is what a registry and containerd call the image.
func printDigests(paths []string) error {
	if len(paths) == 0 {
		return errors.New("digest: name at least one tarball")
	}
	for _, p := range paths {
		raw, err := fileInTar(p, "index.json")
		if err != nil {
			return err
		}
		var idx v1.IndexManifest
		if err := json.Unmarshal(raw, &idx); err != nil {
			return fmt.Errorf("%s: index.json: %w", p, err)
		}
		for _, m := range idx.Manifests {
			fmt.Printf("%s %s %s\n", p, m.Annotations["io.containerd.image.name"], m.Digest)
		}
	}
	return nil
}

// fileInTar returns the contents of one regular file of a tar archive.
func fileInTar(archive, want string) ([]byte, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: no %s (not an OCI layout tarball?)", archive, want)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
		if path.Clean(h.Name) == want {
			return io.ReadAll(tr)
		}
	}
}
