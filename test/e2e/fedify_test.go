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
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// nodeIP is the host's address on the cluster's bridge (NODE_IP of hack/local-cluster.sh):
// pods reach the host there, through their default route.
const nodeIP = "10.244.0.1"

// fedifyPeer is the Fedify app of test/e2e/fedify, running on the host.
type fedifyPeer struct {
	Actor   string `json:"actor"`   // its actor's id
	Origin  string `json:"origin"`  // http://10.244.0.1:<port>
	Control string `json:"control"` // http://127.0.0.1:<port>, the test's control API
	cmd     *exec.Cmd
}

// peerActivity is one activity the peer's inbox accepted, as its control API reports it.
// Fedify runs an inbox listener only for an activity it has verified.
// lastOfType is the last activity of type typ in got, or nil.
func lastOfType(got []peerActivity, typ string) *peerActivity {
	for i := len(got) - 1; i >= 0; i-- {
		if got[i].Type == typ {
			return &got[i]
		}
	}
	return nil
}

type peerActivity struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Actor      string         `json:"actor"`
	Object     string         `json:"object"`
	Result     string         `json:"result"`    // the activity's result (fedify2 only)
	InReplyTo  string         `json:"inReplyTo"` // the object's inReplyTo (fedify2 only)
	ObjectType string         `json:"objectType"`
	Content    string         `json:"content"`
	URLs       []string       `json:"urls"`
	ObjectErr  string         `json:"objectError"`
	JSON       map[string]any `json:"json"`
}

func (a peerActivity) String() string {
	return fmt.Sprintf("%s %s by %s of %s %s", a.Type, a.ID, a.Actor, a.ObjectType, a.Object)
}

// startFedifyPeer starts the Fedify app of test/e2e/<app> with the node named by the
// environment variable nodeEnv (E2E_NODE for fedify, E2E_NODE22 for fedify2; else node in
// PATH; run.sh installs Node and the app's packages), listening on the bridge address for
// the cluster and on loopback for the test, with the given names mapped to addresses. It
// is stopped when the container ends.
func startFedifyPeer(app, nodeEnv string, resolve map[string]string) *fedifyPeer {
	GinkgoHelper()
	dir := filepath.Join(root, "test", "e2e", app)
	_, err := os.Stat(filepath.Join(dir, "node_modules", "@fedify", "fedify"))
	Expect(err).NotTo(HaveOccurred(), "the Fedify app's packages are not installed: run the suite with make test-e2e (or npm ci in %s)", dir)
	node := os.Getenv(nodeEnv)
	if node == "" {
		node = "node"
	}
	args := []string{"peer.mjs", "--listen", nodeIP + ":0", "--control", "127.0.0.1:0"}
	for name, ip := range resolve {
		args = append(args, "--resolve", name+"="+ip)
	}
	// Not tied to a spec's context: the peer outlives BeforeAll.
	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	cmd.Stderr = prefixWriter(app + "-peer: ")
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "$ (cd %s && %s %s)\n", dir, node, strings.Join(args, " "))
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	ready := make(chan string, 1)
	go func() {
		rd := bufio.NewReader(stdout)
		line, _ := rd.ReadString('\n')
		ready <- line
		_, _ = io.Copy(prefixWriter(app+"-peer: "), rd)
	}()
	p := &fedifyPeer{cmd: cmd}
	select {
	case line := <-ready:
		Expect(json.Unmarshal([]byte(line), p)).To(Succeed(), "the peer's first line: %q", line)
	case <-time.After(time.Minute):
		Fail("the Fedify peer did not start within a minute")
	}
	Expect(p.Actor).To(HavePrefix("http://" + nodeIP + ":"))
	return p
}

// call sends one request to the peer's control API and decodes its JSON answer into out.
func (p *fedifyPeer) call(ctx context.Context, method, path string, body any, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	u := strings.TrimPrefix(p.Control, "http://")
	status, resp, err := request(ctx, method, p.Control+path, u, map[string]string{"Content-Type": "application/json"}, b)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, status, resp)
	}
	return json.Unmarshal(resp, out)
}

// received is what the peer's inbox accepted so far.
func (p *fedifyPeer) received(ctx context.Context, g Gomega) []peerActivity {
	var out []peerActivity
	g.Expect(p.call(ctx, http.MethodGet, "/_test/received", nil, &out)).To(Succeed())
	return out
}

// prefixWriter writes each line into the spec's log with a prefix.
type prefixWriter string

func (w prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			fmt.Fprint(GinkgoWriter, string(w)+line)
		}
	}
	return len(b), nil
}

// Scenario 6: a peer that no one here wrote. The Fedify app runs on the host, outside the
// cluster; Fedforge reaches it on the host's bridge address, and it reaches Fedforge by
// the server's Service name (mapped to the Service's cluster IP inside the app).
var _ = Describe("An independent peer (Fedify 1.5.9)", Ordered, func() {
	fedifyScenario("fedify", "E2E_NODE", "e2e-fedify", "")
})

// Scenario 7: the same with the current Fedify 2.x, which signs RFC 9421 first and
// double-knocks; Fedforge must take its first knock (so it learns the peer's profile from
// it, rfc9421-rsa from its inbound signatures) and sign what it sends with RFC 9421, which
// Fedify 2 verifies.
var _ = Describe("An independent peer (Fedify 2.x)", Ordered, func() {
	fedifyScenario("fedify2", "E2E_NODE22", "e2e-fedify2", "rfc9421-rsa")
})

// fedifyScenario follows a Fedforge actor from the Fedify app in test/e2e/<app>, in its own
// namespace. wantProfile, when set, is the signature profile the server must have learnt
// for the peer's host (`fedforge signatures` in the server's pod).
func fedifyScenario(app, nodeEnv, ns, wantProfile string) {
	var (
		fed  = instance{ns: ns}
		peer *fedifyPeer
	)
	releases := "releases-" + app
	gitlabToken := ns + "-gitlab-token"

	BeforeAll(func(ctx SpecContext) {
		createNamespace(ctx, fed.ns)
		// The peer is on the host (nodeIP, in neither the pod nor the Service range this
		// server needs): it is the only private address this server may reach.
		apply(ctx, fed.ns, fed.serverManifest(nodeIP+"/32")+"---"+
			secretManifest("gitlab-webhook", "token", gitlabToken)+"---"+
			releasesActorManifest(releases))
		waitServerReady(ctx, fed, nil)
		waitActorReady(ctx, fed.ns, releases)
		var clusterIP string
		Eventually(func(g Gomega) {
			clusterIP = serverService(ctx, g, fed.ns, serverName).Spec.ClusterIP
		}).WithContext(ctx).Should(Succeed())
		peer = startFedifyPeer(app, nodeEnv, map[string]string{fed.host(): clusterIP})
	}, NodeTimeout(5*time.Minute))

	It("follows a Fedforge actor from outside the cluster, verifies the Accept and a release post with Fedify's signature checks, and unfollows", func(ctx SpecContext) {
		actorID := fed.actorID(releases)

		By("the Fedify peer looking the actor up by its URL and sending a signed Follow")
		var follow struct {
			Follow, Target, Inbox string
		}
		Eventually(func(g Gomega) {
			g.Expect(peer.call(ctx, http.MethodPost, "/_test/follow", map[string]string{"target": actorID}, &follow)).To(Succeed())
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		Expect(follow.Target).To(Equal(actorID))
		Expect(follow.Follow).To(HavePrefix(peer.Origin + "/"))

		By("Fedforge making an Accepted Inbound Subscription for the peer, recording its Follow")
		Eventually(func(g Gomega) {
			in := inbound(ctx, g, fed.ns, releases, peer.Actor)
			g.Expect(in).To(HaveLen(1), "Inbound Subscriptions of %s from %s", releases, peer.Actor)
			g.Expect(in[0].Status.Phase).To(Equal(fedv1.PhaseAccepted), "conditions %v", in[0].Status.Conditions)
			g.Expect(in[0].Status.FollowActivityID).To(Equal(follow.Follow))
			g.Expect(in[0].Status.RemoteInbox).To(Equal(peer.Actor + "/inbox"))
			g.Expect(followersOf(ctx, g, fed.ns, releases)).To(BeEquivalentTo(1))
			g.Expect(totalItems(ctx, g, fed, "/actors/"+releases+"/followers")).To(BeEquivalentTo(1))
		}).WithContext(ctx).Should(Succeed())

		By("the peer having received the Accept of its Follow, verified by Fedify")
		Eventually(func(g Gomega) {
			got := peer.received(ctx, g)
			accept := lastOfType(got, "Accept")
			g.Expect(accept).NotTo(BeNil(), "received: %v", got)
			g.Expect(accept.Actor).To(Equal(actorID))
			g.Expect(accept.Object).To(Equal(follow.Follow), "the Accept names the peer's Follow")
			g.Expect(accept.ObjectType).To(Equal("Follow"))
			g.Expect(accept.ObjectErr).To(BeEmpty())
		}).WithContext(ctx).Should(Succeed())

		By("a GitLab release webhook posted to the actor reaching the peer as a verified Create of a Note")
		body, link := gitlabRelease("v1.1")
		Eventually(func(g Gomega) {
			status, resp := postGitLabHook(ctx, g, fed, releases, "gitlab", gitlabToken, body)
			g.Expect(status).To(Equal(http.StatusAccepted), resp)
		}).WithContext(ctx).Should(Succeed())
		Eventually(func(g Gomega) {
			got := peer.received(ctx, g)
			create := lastOfType(got, "Create")
			g.Expect(create).NotTo(BeNil(), "received: %v", got)
			g.Expect(create.Actor).To(Equal(actorID))
			g.Expect(create.ObjectType).To(Equal("Note"), "%s", create.ObjectErr)
			g.Expect(create.Object).To(HavePrefix(actorID + "/"))
			g.Expect(append(create.URLs, create.Content)).To(ContainElement(ContainSubstring(link)), "the Note links the release page")
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())

		By("the peer unfollowing with Undo(Follow): the Inbound Subscription goes, the followers count is 0")
		var undo struct{ Undo, Follow string }
		Expect(peer.call(ctx, http.MethodPost, "/_test/unfollow", map[string]string{"target": actorID}, &undo)).To(Succeed())
		Expect(undo.Follow).To(Equal(follow.Follow))
		Eventually(func(g Gomega) {
			g.Expect(inbound(ctx, g, fed.ns, releases, peer.Actor)).To(BeEmpty())
			g.Expect(followersOf(ctx, g, fed.ns, releases)).To(BeZero())
			g.Expect(totalItems(ctx, g, fed, "/actors/"+releases+"/followers")).To(BeZero())
		}).WithContext(ctx).Should(Succeed())

		By("the peer having refused nothing Fedforge sent (no signature or parse failure, retried later)")
		var refused []map[string]any
		Expect(peer.call(ctx, http.MethodGet, "/_test/refused", nil, &refused)).To(Succeed())
		Expect(refused).To(BeEmpty())
		got := peer.received(ctx, Default)
		for _, a := range got {
			fmt.Fprintf(GinkgoWriter, "the peer received: %v\n", a)
		}

		if wantProfile != "" {
			By("the server having learnt the peer's signature profile (" + wantProfile + ") from its first knock")
			peerHost := strings.TrimPrefix(peer.Origin, "http://")
			Eventually(func(g Gomega) {
				out, err := kubectl(ctx, "", "-n", fed.ns, "exec", "deploy/"+serverName+"-server", "--", "/fedforge", "signatures")
				g.Expect(err).NotTo(HaveOccurred(), out)
				g.Expect(out).To(MatchRegexp(`(?m)^`+regexpQuote(peerHost)+`\s+`+wantProfile+`\s`), out)
			}).WithContext(ctx).Should(Succeed())
		}

		By("the peer's checks being on: the same Create, posted without a signature, is refused")
		var forged map[string]any
		for _, a := range got {
			if a.Type == "Create" {
				forged = a.JSON
			}
		}
		Expect(forged).NotTo(BeNil())
		forged["id"] = actorID + "/activities/forged"
		b, err := json.Marshal(forged)
		Expect(err).NotTo(HaveOccurred())
		inbox := peer.Actor + "/inbox"
		status, resp, err := request(ctx, http.MethodPost, inbox, strings.TrimPrefix(peer.Origin, "http://"),
			map[string]string{"Content-Type": "application/activity+json"}, b)
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusUnauthorized), "%s", resp)
		Expect(peer.received(ctx, Default)).To(HaveLen(len(got)), "the unsigned Create was not kept")
	})
}

// regexpQuote escapes s for a regular expression.
func regexpQuote(s string) string { return regexp.QuoteMeta(s) }
