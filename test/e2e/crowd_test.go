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
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// crowd is a host-side peer with n followers, each an actor with its own inbox on the node's
// bridge address (reachable from pods). The actors share one RSA key pair (each under its
// own key id): generating a thousand keys would only cost time. It counts what each inbox
// receives, by activity id.
type crowd struct {
	base string
	n    int
	key  *rsa.PrivateKey
	doc  func(i int) []byte

	mu       sync.Mutex
	received map[string]map[int]int // activity id -> actor index -> times
	bodies   map[string][]byte      // activity id -> the first body received
	accepts  map[int]bool           // actors whose Follow was Accepted
}

func startCrowd(n int) *crowd {
	GinkgoHelper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	Expect(err).NotTo(HaveOccurred())
	ln, err := net.Listen("tcp", nodeIP+":0")
	Expect(err).NotTo(HaveOccurred(), "listening on the node's bridge address %s", nodeIP)
	c := &crowd{base: "http://" + ln.Addr().String(), n: n, key: key, received: map[string]map[int]int{}, bodies: map[string][]byte{}, accepts: map[int]bool{}}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	Expect(err).NotTo(HaveOccurred())
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	c.doc = func(i int) []byte {
		id := c.actorID(i)
		b, _ := json.Marshal(map[string]any{
			"@context": []string{"https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"},
			"id":       id, "type": "Person", "preferredUsername": "f" + strconv.Itoa(i),
			"inbox": id + "/inbox", "outbox": id + "/outbox", // no sharedInbox: one delivery per follower
			"publicKey": map[string]any{"id": id + "#main-key", "owner": id, "publicKeyPem": pemKey},
		})
		return b
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{i}", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.PathValue("i"))
		if err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/activity+json")
		_, _ = w.Write(c.doc(i))
	})
	mux.HandleFunc("POST /users/{i}/inbox", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.PathValue("i"))
		if err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		var act struct {
			ID, Type string
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if json.Unmarshal(body, &act) != nil || act.ID == "" {
			http.Error(w, "bad activity", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		if c.received[act.ID] == nil {
			c.received[act.ID] = map[int]int{}
			c.bodies[act.ID] = body
		}
		c.received[act.ID][i]++
		if act.Type == "Accept" {
			c.accepts[i] = true
		}
		c.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	DeferCleanup(func() { _ = srv.Close() })
	return c
}

func (c *crowd) actorID(i int) string { return c.base + "/users/" + strconv.Itoa(i) }

// followAll sends every actor's signed Follow of object to the server's shared inbox at
// target (a URL the test process reaches) under the server's host name, 8 at a time.
func (c *crowd) followAll(ctx context.Context, target, host, object string) {
	GinkgoHelper()
	var wg sync.WaitGroup
	work := make(chan int)
	var mu sync.Mutex
	failed := map[string]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer GinkgoRecover()
			for i := range work {
				body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%[1]s/follows/1","type":"Follow","actor":%[1]q,"object":%[2]q}`, c.actorID(i), object))
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+"/inbox", bytes.NewReader(body))
				Expect(err).NotTo(HaveOccurred())
				req.Header.Set("Content-Type", "application/activity+json")
				Expect(activitypub.SignCavage(req, body, c.key, c.actorID(i)+"#main-key", activitypub.CavageOptions{})).To(Succeed())
				req.URL.Host = strings.TrimPrefix(target, "http://")
				resp, err := http.DefaultClient.Do(req)
				status := "error"
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = strconv.Itoa(resp.StatusCode)
				}
				if status != "202" {
					mu.Lock()
					failed[status]++
					mu.Unlock()
				}
			}
		}()
	}
	for i := range c.n {
		work <- i
	}
	close(work)
	wg.Wait()
	Expect(failed).To(BeEmpty(), "answers to the Follows other than 202")
}

// accepted is how many actors got an Accept.
func (c *crowd) accepted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.accepts)
}

// deliveries of the Create that mentions link: how many actors got it, and how many
// copies beyond one were received in all.
func (c *crowd) deliveries(link string) (reached, duplicates int, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for aid, by := range c.received {
		b := c.bodies[aid]
		if !bytes.Contains(b, []byte(`"Create"`)) || !bytes.Contains(b, []byte(link)) {
			continue
		}
		id = aid
		for _, times := range by {
			reached++
			duplicates += times - 1
		}
	}
	return reached, duplicates, id
}

// killProcessOfPod sends SIGKILL to the `fedforge server` process of a pod on this node
// (the pods' processes are this host's; the kubelet restarts the container), found by the
// HOSTNAME the container runtime set to the pod's name.
func killProcessOfPod(pod string) int {
	GinkgoHelper()
	entries, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte("server\x00--server=")) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte("\x00HOSTNAME="+pod+"\x00")) && !bytes.HasPrefix(env, []byte("HOSTNAME="+pod+"\x00")) {
			continue
		}
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		return pid
	}
	Fail("no fedforge server process of pod " + pod + " on this node")
	return 0
}
