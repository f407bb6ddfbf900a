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
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/store"
)

// loadAnswer is what one POST of an inboxLoad got.
type loadAnswer struct {
	id     string // the activity's id
	addr   string // host:port it was sent to
	status int
	err    error
}

// inboxLoad posts a signed Create{Note} from one actor of another instance to a server's
// shared inbox every 50 ms, each with its own id, until stopped: the steady load of the
// rollout and database-restart scenarios. Every POST has a 10 s client timeout, so a hung
// request shows up as an error instead of stalling the load.
type inboxLoad struct {
	to       instance // the server under load (Host header, URLs)
	addrs    func() []string
	signer   *rsa.PrivateKey
	actor    string
	label    string
	client   *http.Client
	mu       sync.Mutex
	answers  []loadAnswer
	stopping chan struct{}
	done     chan struct{}
}

// startInboxLoad starts the load of actor user of from (its key read from its Secret) into
// to's inbox; addrs says where each POST goes (round robin over what it returns), the
// Host header is always to's name. It stops by itself when the spec ends.
func startInboxLoad(ctx context.Context, from instance, user string, to instance, label string, addrs func() []string) *inboxLoad {
	GinkgoHelper()
	sec := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: from.ns, Name: user + "-keys"}, sec)).To(Succeed())
	kp, err := keys.FromData(sec.Data)
	Expect(err).NotTo(HaveOccurred())
	l := &inboxLoad{to: to, addrs: addrs, signer: kp.RSA, actor: from.actorID(user), label: label,
		client: &http.Client{Timeout: 10 * time.Second}, stopping: make(chan struct{}), done: make(chan struct{})}
	go l.run(ctx)
	DeferCleanup(l.stop)
	return l
}

func (l *inboxLoad) run(ctx context.Context) {
	defer close(l.done)
	defer GinkgoRecover()
	for n := 0; ; n++ {
		select {
		case <-l.stopping:
			return
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
		addrs := l.addrs()
		if len(addrs) == 0 {
			continue
		}
		a := l.post(ctx, addrs[n%len(addrs)], n)
		l.mu.Lock()
		l.answers = append(l.answers, a)
		l.mu.Unlock()
	}
}

// post sends the n-th activity to addr.
func (l *inboxLoad) post(ctx context.Context, addr string, n int) loadAnswer {
	id := fmt.Sprintf("%s/notes/%s-%d-%d", l.actor, l.label, GinkgoRandomSeed(), n)
	body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%[1]s/activity","type":"Create","actor":%[2]q,"to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":%[1]q,"type":"Note","content":"%[3]s %[4]d","attributedTo":%[2]q}}`, id, l.actor, l.label, n))
	a := loadAnswer{id: id + "/activity", addr: addr}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.to.base()+"/inbox", bytes.NewReader(body))
	if err != nil {
		a.err = err
		return a
	}
	req.Header.Set("Content-Type", "application/activity+json")
	if a.err = activitypub.SignCavage(req, body, l.signer, l.actor+"#main-key", activitypub.CavageOptions{}); a.err != nil {
		return a
	}
	req.URL.Host = addr // a Service's cluster IP or a pod's address; Host stays the instance's name
	resp, err := l.client.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	a.status = resp.StatusCode
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return a
}

// stop ends the load and waits for the POST in flight; it may be called more than once.
func (l *inboxLoad) stop() {
	select {
	case <-l.stopping:
	default:
		close(l.stopping)
	}
	<-l.done
}

// snapshot is a copy of the answers so far.
func (l *inboxLoad) snapshot() []loadAnswer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loadAnswer(nil), l.answers...)
}

// count is how many answers so far had status.
func (l *inboxLoad) count(status int) int {
	n := 0
	for _, a := range l.snapshot() {
		if a.status == status {
			n++
		}
	}
	return n
}

// tally counts the answers by "status error", leaving out the statuses in ok.
func (l *inboxLoad) tally(ok ...int) map[string]int {
	out := map[string]int{}
next:
	for _, a := range l.snapshot() {
		for _, s := range ok {
			if a.err == nil && a.status == s {
				continue next
			}
		}
		out[fmt.Sprintf("%d %v", a.status, a.err)]++
	}
	return out
}

// expectAcceptedStored checks that every POST answered 202 is in the store at dsn (read
// from PostgreSQL directly) and returns how many there were.
func (l *inboxLoad) expectAcceptedStored(ctx context.Context, dsn string) int {
	GinkgoHelper()
	st, err := store.Open(ctx, dsn)
	Expect(err).NotTo(HaveOccurred())
	defer st.Close()
	n := 0
	for _, a := range l.snapshot() {
		if a.status != http.StatusAccepted {
			continue
		}
		n++
		_, err := st.GetReceived(ctx, a.id)
		Expect(err).NotTo(HaveOccurred(), "accepted activity %s (sent to %s) is not in the store", a.id, a.addr)
	}
	return n
}
