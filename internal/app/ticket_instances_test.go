package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// TestTicketBetweenInstances is the seeds' flow between two Fedforge instances: Alice, an
// actor of instance beta, opens an issue on Bob's repository, fronted by instance alpha in
// front of a real Gitea, by posting an Offer{Ticket} to her own outbox (client to server);
// alpha opens the issue and Alice's inbox gets the Accept naming the Ticket; her reply,
// posted to her outbox, becomes a comment; a comment written in Gitea and the issue's
// closing reach her inbox as a Note in reply to the Ticket and a Resolve.
func TestTicketBetweenInstances(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	p := newPair(t)
	ctx := context.Background()
	repo := g.CreateRepo(t, "bobs-project")
	bot := g.CreateUser(t, "fedforge-bot", "read:repository", "write:issue")
	const secret, aliceToken = "bobs-hook-secret", "alice-outbox-token-value"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token, "hook": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "bobs-project"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "bobs-project",
			Forge:             &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: g.URL, Project: repo.FullName, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}},
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "forge-token", Key: "hook"}}}},
	}))
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "beta", Name: "alice-outbox-token"},
		StringData: map[string]string{"token": aliceToken}}))
	p.actor(t, p.beta, "alice", "alice", false)
	project := urls.ForActor(p.alpha.base(), "bobs-project")
	alice := p.beta.base() + "/actors/alice"
	waitServed(t, p.alpha, "bobs-project")
	_, relayURL := startHookRelay(t, p)
	owner, name := repo.Owner.UserName, repo.Name
	g.CreateWebhook(t, owner, name, relayURL+"/hooks/bobs-project/gitea", secret, "issues", "issue_comment")
	bob := g.CreateUser(t, "bob")

	// outbox posts doc to Alice's outbox on beta, as her client does.
	outbox := func(t *testing.T, doc string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.beta.listen+"/actors/alice/outbox", bytes.NewReader([]byte(doc)))
		req.Host = betaHost
		req.Header.Set("Content-Type", "application/activity+json")
		req.Header.Set("Authorization", "Bearer "+aliceToken)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("outbox POST: %d %s", resp.StatusCode, b)
		}
		var out map[string]any
		must(t, json.Unmarshal(b, &out))
		return out
	}
	betaStore, err := store.Open(ctx, p.beta.dsn)
	must(t, err)
	t.Cleanup(func() { _ = betaStore.Close() })
	// inbox waits for an activity of typ in Alice's inbox on beta that contains text.
	inbox := func(t *testing.T, typ, text string) map[string]any {
		t.Helper()
		var found map[string]any
		eventually(t, 90*time.Second, func() error {
			for _, r := range receivedOf(t, betaStore, alice, typ) {
				if strings.Contains(string(r.Raw), text) {
					must(t, json.Unmarshal(r.Raw, &found))
					return nil
				}
			}
			return fmt.Errorf("no %s containing %q in Alice's inbox yet", typ, text)
		})
		return found
	}

	offer := outbox(t, `{"type":"Offer","target":"`+project.ID+`","object":{"type":"Ticket","name":"Build fails on arm64",
		"source":{"content":"The `+"`make`"+` step **fails** on arm64.","mediaType":"text/markdown"}}}`)
	ticket := project.Ticket(1)
	t.Run("the Offer from Alice's outbox opens the issue on Bob's Gitea, credited to her", func(t *testing.T) {
		eventually(t, 90*time.Second, func() error {
			is, _, err := g.Client.GetIssue(owner, name, 1)
			if err != nil {
				return err
			}
			if is.Title != "Build fails on arm64" || !strings.Contains(is.Body, "**fails** on arm64") || !strings.Contains(is.Body, "<"+alice+">") {
				return fmt.Errorf("issue #1: %q\n%s", is.Title, is.Body)
			}
			return nil
		})
	})
	t.Run("Alice's inbox gets the Accept naming the Ticket", func(t *testing.T) {
		accept := inbox(t, "Accept", fmt.Sprint(offer["id"]))
		if accept["result"] != ticket || accept["actor"] != project.ID {
			t.Errorf("Accept = %v, want from %s with result %s", accept, project.ID, ticket)
		}
	})
	t.Run("her reply from her outbox becomes a comment", func(t *testing.T) {
		outbox(t, `{"type":"Note","content":"<p>It also fails on riscv64.</p>","inReplyTo":"`+ticket+`","to":["`+project.ID+`"]}`)
		eventually(t, 90*time.Second, func() error {
			cs, _, err := g.Client.ListIssueComments(owner, name, 1, sdk.ListIssueCommentOptions{})
			if err != nil {
				return err
			}
			for _, c := range cs {
				if strings.Contains(c.Body, "It also fails on riscv64.") && strings.Contains(c.Body, "<"+alice+">") {
					return nil
				}
			}
			return fmt.Errorf("no comment with her reply on issue #1 (%d comments)", len(cs))
		})
	})
	t.Run("Bob's comment and his closing reach her inbox", func(t *testing.T) {
		_, _, err := bob.Client.CreateIssueComment(owner, name, 1, sdk.CreateIssueCommentOption{Body: "Fixed by the new toolchain."})
		must(t, err)
		note := inbox(t, "Create", "Fixed by the new toolchain.")
		if obj, _ := note["object"].(map[string]any); obj == nil || obj["inReplyTo"] != ticket {
			t.Errorf("Bob's comment arrived as %v, want a Note in reply to %s", note["object"], ticket)
		}
		closed := sdk.StateClosed
		_, _, err = g.Client.EditIssue(owner, name, 1, sdk.EditIssueOption{State: &closed})
		must(t, err)
		inbox(t, "Resolve", ticket)
	})
}
