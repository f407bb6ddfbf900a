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
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// e2eGitea is a Gitea started with hack/gitea.sh on the host's bridge address, where the
// cluster's pods reach it, as a forge outside the cluster is reached.
type e2eGitea struct {
	URL, User, Token, Dir string
	admin                 *sdk.Client
}

// startGitea starts a throwaway Gitea on nodeIP and stops it when the container ends.
func startGitea(ctx context.Context) *e2eGitea {
	GinkgoHelper()
	ln, err := net.Listen("tcp", nodeIP+":0")
	Expect(err).NotTo(HaveOccurred(), "the bridge address %s is not on this machine", nodeIP)
	addr := ln.Addr().String()
	Expect(ln.Close()).To(Succeed())
	dir, err := os.MkdirTemp("", "fedforge-e2e-gitea-")
	Expect(err).NotTo(HaveOccurred())
	script := filepath.Join(root, "hack", "gitea.sh")
	cmd := exec.CommandContext(ctx, script, "start", dir, addr)
	cmd.Dir = root
	// The script stops this Gitea as soon as the suite's process is gone.
	cmd.Env = append(os.Environ(), fmt.Sprintf("GITEA_WATCH_PID=%d", os.Getpid()))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	Expect(cmd.Run()).To(Succeed(), "hack/gitea.sh start: %s", stderr.String())
	g := &e2eGitea{}
	Expect(json.Unmarshal(stdout.Bytes(), g)).To(Succeed(), "hack/gitea.sh start printed %q", stdout.String())
	g.URL = strings.TrimSuffix(g.URL, "/")
	DeferCleanup(func() {
		out, err := exec.Command(script, "stop", dir).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "hack/gitea.sh stop: %s", out)
		_ = os.RemoveAll(dir)
	})
	g.admin, err = sdk.NewClient(g.URL, sdk.SetToken(g.Token))
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "Gitea at %s (dir %s)\n", g.URL, dir)
	return g
}

// user creates a Gitea user and returns a client holding a token of it with scopes.
func (g *e2eGitea) user(name string, scopes ...sdk.AccessTokenScope) (*sdk.Client, string) {
	GinkgoHelper()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	password, no := hex.EncodeToString(b), false
	_, _, err := g.admin.AdminCreateUser(sdk.CreateUserOption{Username: name, Email: name + "@example.invalid", Password: password, MustChangePassword: &no})
	Expect(err).NotTo(HaveOccurred())
	basic, err := sdk.NewClient(g.URL, sdk.SetBasicAuth(name, password))
	Expect(err).NotTo(HaveOccurred())
	tok, _, err := basic.CreateAccessToken(sdk.CreateAccessTokenOption{Name: "e2e", Scopes: scopes})
	Expect(err).NotTo(HaveOccurred())
	c, err := sdk.NewClient(g.URL, sdk.SetToken(tok.Token))
	Expect(err).NotTo(HaveOccurred())
	return c, tok.Token
}

// Scenario 8: a ticket from Fedify 2 into a real Gitea. The Fedify 2 peer (on the host)
// offers a ticket to a Repository actor in the cluster whose spec.forge is a Gitea on the
// host's bridge address; the issue appears in Gitea; Fedify receives the Accept, whose
// result is the Ticket, and verifies its signature; a comment written in Gitea reaches
// Fedify as a verified Note in reply to the Ticket.
var _ = Describe("A ticket from Fedify 2 into a real Gitea", Ordered, func() {
	var (
		fed   = instance{ns: "e2e-tickets"}
		peer  *fedifyPeer
		forge *e2eGitea
		repo  *sdk.Repository
		carol *sdk.Client // a forge user who comments
	)
	const tracker, hookSecret = "tracker", "e2e-tickets-hook"

	BeforeAll(func(ctx SpecContext) {
		forge = startGitea(ctx)
		var err error
		repo, _, err = forge.admin.CreateRepo(sdk.CreateRepoOption{Name: "tracker", DefaultBranch: "main"})
		Expect(err).NotTo(HaveOccurred())
		_, botToken := forge.user("fedforge-bot", sdk.AccessTokenScope("read:repository"), sdk.AccessTokenScope("write:issue"))
		carol, _ = forge.user("carol", sdk.AccessTokenScope("write:issue"), sdk.AccessTokenScope("read:repository"))

		createNamespace(ctx, fed.ns)
		// The peer and the forge are both on the host (nodeIP): the only private address
		// this server may reach.
		apply(ctx, fed.ns, fed.serverManifest(nodeIP+"/32")+"---"+
			fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata:
  name: forge-token
stringData:
  token: %s
  hook: %s
`, botToken, hookSecret)+"---"+
			actorManifest(tracker, "Repository", fmt.Sprintf(`  forge:
    type: Gitea
    url: %s
    project: %s
    tokenSecretRef: {name: forge-token}
  sources:
  - name: gitea
    type: Gitea
    secretRef: {name: forge-token, key: hook}
`, forge.URL, repo.FullName)))
		waitServerReady(ctx, fed, nil)
		waitActorReady(ctx, fed.ns, tracker)
		var base, clusterIP string
		Eventually(func(g Gomega) {
			svc := serverService(ctx, g, fed.ns, serverName)
			clusterIP, base = svc.Spec.ClusterIP, serviceURL(svc)
		}).WithContext(ctx).Should(Succeed())
		// Gitea (on the host) posts its webhooks to the server's Service.
		_, _, err = forge.admin.CreateRepoHook(repo.Owner.UserName, repo.Name, sdk.CreateHookOption{Type: sdk.HookTypeGitea,
			Config: map[string]string{"url": base + "/hooks/" + tracker + "/gitea", "content_type": "json", "secret": hookSecret},
			Events: []string{"issues", "issue_comment"}, Active: true})
		Expect(err).NotTo(HaveOccurred())
		peer = startFedifyPeer("fedify2", "E2E_NODE22", map[string]string{fed.host(): clusterIP})
	}, NodeTimeout(5*time.Minute))

	It("opens the offered issue, answers with a verified Accept of the Ticket, and sends a forge comment as a verified Note", func(ctx SpecContext) {
		actorID := fed.actorID(tracker)
		ticket := actorID + "/issues/1"

		By("the Fedify peer sending Offer{Ticket} to the Repository actor, signed with Fedify's RFC 9421 signRequest")
		var offer struct {
			Offer, Target, Answer string
			Status                int
		}
		Eventually(func(g Gomega) {
			g.Expect(peer.call(ctx, http.MethodPost, "/_test/offer", map[string]string{"target": actorID,
				"name": "Build fails on arm64", "markdown": "The make step **fails** on arm64."}, &offer)).To(Succeed())
			g.Expect(offer.Status).To(Equal(http.StatusAccepted), offer.Answer)
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())

		By("the issue appearing in Gitea, credited to the peer's actor")
		Eventually(func(g Gomega) {
			is, _, err := forge.admin.GetIssue(repo.Owner.UserName, repo.Name, 1)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(is.Title).To(Equal("Build fails on arm64"))
			g.Expect(is.Poster.UserName).To(Equal("fedforge-bot"))
			g.Expect(is.Body).To(ContainSubstring("The make step **fails** on arm64."))
			g.Expect(is.Body).To(ContainSubstring("Opened on the Fediverse by"))
			g.Expect(is.Body).To(ContainSubstring(peer.Actor))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())

		By("the peer having received the Accept of its Offer, with the Ticket as result, verified by Fedify")
		Eventually(func(g Gomega) {
			got := peer.received(ctx, g)
			accept := lastOfType(got, "Accept")
			g.Expect(accept).NotTo(BeNil(), "received: %v", got)
			g.Expect(accept.Actor).To(Equal(actorID))
			g.Expect(accept.Object).To(Equal(offer.Offer))
			g.Expect(accept.Result).To(Equal(ticket))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())

		By("a comment written in Gitea reaching the peer as a verified Note in reply to the Ticket")
		_, _, err := carol.CreateIssueComment(repo.Owner.UserName, repo.Name, 1, sdk.CreateIssueCommentOption{Body: "Thanks, I can reproduce it."})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			got := peer.received(ctx, g)
			var note *peerActivity
			for i := range got {
				if got[i].Type == "Create" && strings.Contains(got[i].Content, "I can reproduce it") {
					note = &got[i]
				}
			}
			g.Expect(note).NotTo(BeNil(), "received: %v", got)
			g.Expect(note.Actor).To(Equal(actorID))
			g.Expect(note.ObjectType).To(Equal("Note"), "%s", note.ObjectErr)
			g.Expect(note.InReplyTo).To(Equal(ticket))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())

		By("the peer having refused nothing Fedforge sent")
		var refused []map[string]any
		Expect(peer.call(ctx, http.MethodGet, "/_test/refused", nil, &refused)).To(Succeed())
		Expect(refused).To(BeEmpty())
		for _, a := range peer.received(ctx, Default) {
			fmt.Fprintf(GinkgoWriter, "the peer received: %v\n", a)
		}
	})
})
