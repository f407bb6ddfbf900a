package app

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestTicketsIntoRealGitea: a remote peer opens an issue on a Repository actor in front of
// a real Gitea with Offer{Ticket}, gets a signed Accept whose result is the Ticket, reads
// the Ticket, replies, edits and deletes its reply; refusals (a forged author, an actor
// without tickets, an unknown actor, an oversized ticket) and a forge that is down.
func TestTicketsIntoRealGitea(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	tp := newTicketPeer(t)
	p := newPair(t, tp.host+"="+tp.addr)
	tp.attach(p.alpha.listen)
	ctx := context.Background()
	repo := g.CreateRepo(t, "tracker")
	bot := g.CreateUser(t, "fedforge-bot", "read:repository", "write:issue")
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token}}))
	api := startAPICounter(t, g.URL)
	forgeSpec := &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: api.url, Project: repo.FullName, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}}
	for name, spec := range map[string]fedv1.FederatedActorSpec{
		"tracker": {Type: fedv1.ActorRepository, Forge: forgeSpec},
		"plain":   {Type: fedv1.ActorService},
	} {
		spec.ServerRef, spec.PreferredUsername = fedv1.LocalObjectReference{Name: "forge"}, name
		must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: name}, Spec: spec}))
	}
	tracker := p.alpha.base() + "/actors/tracker"
	for _, u := range []string{tracker, p.alpha.base() + "/actors/plain"} {
		eventually(t, 30*time.Second, func() error {
			req, _ := http.NewRequest(http.MethodGet, "http://"+p.alpha.listen+strings.TrimPrefix(u, p.alpha.base()), nil)
			req.Host = alphaHost
			req.Header.Set("Accept", activitypub.AcceptActivity)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %d", u, resp.StatusCode)
			}
			return nil
		})
	}
	alphaDB, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(p.alpha.dsn, "sqlite://")+"?mode=ro")
	must(t, err)
	t.Cleanup(func() { _ = alphaDB.Close() })
	writes := func() int {
		var n int
		must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM forge_writes`).Scan(&n))
		return n
	}
	alice, mallory := tp.actor("alice"), tp.actor("mallory")
	owner, name := repo.Owner.UserName, repo.Name
	issuesTitled := func(title string) []*sdk.Issue {
		list, _, err := g.Client.ListRepoIssues(owner, name, sdk.ListIssueOption{State: sdk.StateAll, Type: sdk.IssueTypeIssue, ListOptions: sdk.ListOptions{PageSize: 50}})
		must(t, err)
		var out []*sdk.Issue
		for _, is := range list {
			if is.Title == title {
				out = append(out, is)
			}
		}
		return out
	}
	offer := func(id, actor, target, title, markdown string) map[string]any {
		return map[string]any{
			"@context": []string{activitypub.ActivityStreamsContext, activitypub.ForgeFedContext},
			"id":       id, "type": "Offer", "actor": actor, "target": target, "to": []string{target},
			"object": map[string]any{"id": id + "#ticket", "type": "Ticket", "attributedTo": actor, "name": title,
				"content": "<p>html</p>", "mediaType": "text/html", "source": map[string]any{"content": markdown, "mediaType": "text/markdown"}},
		}
	}
	waitAnswer := func(t *testing.T, typ, offerID string) map[string]any {
		t.Helper()
		var got []map[string]any
		eventually(t, 90*time.Second, func() error {
			if got = tp.answers(typ, offerID); len(got) == 0 {
				return fmt.Errorf("no verified %s of %s yet (unverified: %v)", typ, offerID, tp.unverified)
			}
			return nil
		})
		return got[0]
	}

	offer1 := "http://" + tp.host + "/offers/1"
	ticket1 := tracker + "/issues/1"
	t.Run("Offer{Ticket} opens an attributed issue and is accepted with the Ticket", func(t *testing.T) {
		api.reset()
		if code, body := tp.send(t, p, "alice", offer("http://"+tp.host+"/offers/1", alice, tracker, "Crash on start", "It **crashes** on `start`.")); code != http.StatusAccepted {
			t.Fatalf("Offer answered %d %s", code, body)
		}
		accept := waitAnswer(t, "Accept", offer1)
		if accept["actor"] != tracker || accept["result"] != ticket1 {
			t.Errorf("Accept = %v, want from %s with result %s", accept, tracker, ticket1)
		}
		if calls := api.issueCalls(); fmt.Sprint(calls) != "[POST /api/v1/repos/"+repo.FullName+"/issues]" {
			t.Errorf("forge API calls for one Offer: %v, want the one POST", calls)
		}
		is := issuesTitled("Crash on start")
		if len(is) != 1 || is[0].Index != 1 || is[0].Poster.UserName != "fedforge-bot" {
			t.Fatalf("issues = %+v, want #1 by the bot", is)
		}
		for _, want := range []string{"It **crashes** on `start`.", "Opened on the Fediverse by", "(<" + alice + ">)", "tickets\\.peer\\.test"} {
			if !strings.Contains(is[0].Body, want) {
				t.Errorf("issue body lacks %q:\n%s", want, is[0].Body)
			}
		}
	})

	t.Run("the same Offer again opens nothing and is not answered twice", func(t *testing.T) {
		before := writes()
		if code, body := tp.send(t, p, "alice", offer(offer1, alice, tracker, "Crash on start", "again")); code != http.StatusAccepted {
			t.Fatalf("repeated Offer answered %d %s", code, body)
		}
		if n := writes(); n != before {
			t.Errorf("the repeated Offer queued %d forge writes", n-before)
		}
		if n := len(issuesTitled("Crash on start")); n != 1 {
			t.Errorf("%d issues, want 1", n)
		}
		if n := len(tp.answers("Accept", offer1)); n != 1 {
			t.Errorf("%d Accepts of the Offer, want 1", n)
		}
	})

	t.Run("the Ticket is served from the forge, for offered and forge-born issues", func(t *testing.T) {
		doc := getAS2(t, p.alpha, "/actors/tracker/issues/1")
		want := map[string]any{"id": ticket1, "type": "Ticket", "context": tracker, "attributedTo": "[" + alice + "]", "name": "Crash on start",
			"isResolved": false, "replies": ticket1 + "/replies", "followers": ticket1 + "/followers"}
		for k, v := range want {
			if fmt.Sprint(doc[k]) != fmt.Sprint(v) {
				t.Errorf("Ticket %s = %v, want %v", k, doc[k], v)
			}
		}
		if src, _ := doc["source"].(map[string]any); src["content"] != "It **crashes** on `start`." || src["mediaType"] != "text/markdown" {
			t.Errorf("Ticket source = %v, want the Markdown without the credit line", doc["source"])
		}
		if doc["content"] != "<p>It <strong>crashes</strong> on <code>start</code>.</p>" || doc["mediaType"] != "text/html" {
			t.Errorf("Ticket content = %v (%v), want the Markdown rendered as Gitea shows it", doc["content"], doc["mediaType"])
		}
		if fmt.Sprint(doc["url"]) != "["+g.URL+"/"+repo.FullName+"/issues/1]" {
			t.Errorf("Ticket url = %v, want the Gitea issue page", doc["url"])
		}
		born, _, err := g.Client.CreateIssue(owner, name, sdk.CreateIssueOption{Title: "Opened in Gitea", Body: "by a forge user"})
		must(t, err)
		_, _, err = g.Client.CreateIssue(owner, name, sdk.CreateIssueOption{Title: "Read often", Body: "cached"})
		must(t, err)
		doc = getAS2(t, p.alpha, fmt.Sprintf("/actors/tracker/issues/%d", born.Index))
		if doc["type"] != "Ticket" || doc["name"] != "Opened in Gitea" || fmt.Sprint(doc["attributedTo"]) != "["+g.URL+"/"+g.AdminUser+"]" {
			t.Errorf("forge-born Ticket = %v, want attributed to the Gitea user's profile", doc)
		}
		// A storm of GETs of one Ticket costs at most one forge call per 30 s.
		api.reset()
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() { defer wg.Done(); _ = getAS2(t, p.alpha, "/actors/tracker/issues/3") }()
		}
		wg.Wait()
		for range 20 {
			_ = getAS2(t, p.alpha, "/actors/tracker/issues/3")
		}
		if calls := api.issueCalls(); len(calls) > 1 {
			t.Errorf("40 GETs of a Ticket made %d forge calls: %v", len(calls), calls)
		}
		f := getAS2(t, p.alpha, "/actors/tracker/issues/1/followers")
		if fmt.Sprint(f["orderedItems"]) != "["+alice+"]" {
			t.Errorf("ticket followers = %v, want the author", f["orderedItems"])
		}
	})

	note1 := "http://" + tp.host + "/notes/1"
	comments := func() []*sdk.Comment {
		cs, _, err := g.Client.ListIssueComments(owner, name, 1, sdk.ListIssueCommentOptions{})
		must(t, err)
		return cs
	}
	t.Run("a reply becomes an attributed comment", func(t *testing.T) {
		api.reset()
		create := map[string]any{"@context": activitypub.ActivityStreamsContext, "id": "http://" + tp.host + "/creates/1", "type": "Create", "actor": alice,
			"to": []string{tracker}, "object": map[string]any{"id": note1, "type": "Note", "attributedTo": alice, "inReplyTo": ticket1,
				"content": "<p>Same here, with <b>v2</b>.</p>"}}
		if code, body := tp.send(t, p, "alice", create); code != http.StatusAccepted {
			t.Fatalf("Create answered %d %s", code, body)
		}
		eventually(t, 60*time.Second, func() error {
			cs := comments()
			if len(cs) != 1 || !strings.Contains(cs[0].Body, "Same here, with <b>v2</b>.") || !strings.Contains(cs[0].Body, "(<"+alice+">)") {
				return fmt.Errorf("comments %v", commentBodies(cs))
			}
			return nil
		})
		if calls := api.issueCalls(); fmt.Sprint(calls) != "[POST /api/v1/repos/"+repo.FullName+"/issues/1/comments]" {
			t.Errorf("forge API calls for one reply: %v, want the one POST", calls)
		}
		var r map[string]any
		eventually(t, 30*time.Second, func() error {
			if r = getAS2(t, p.alpha, "/actors/tracker/issues/1/replies"); fmt.Sprint(r["orderedItems"]) != "["+note1+"]" {
				return fmt.Errorf("replies %v", r["orderedItems"])
			}
			return nil
		})
	})

	t.Run("a Note claiming another author is refused", func(t *testing.T) {
		before := writes()
		forged := map[string]any{"@context": activitypub.ActivityStreamsContext, "id": "http://" + tp.host + "/creates/forged", "type": "Create", "actor": mallory,
			"object": map[string]any{"id": "http://" + tp.host + "/notes/forged", "type": "Note", "attributedTo": alice, "inReplyTo": ticket1, "content": "I am alice"}}
		if code, _ := tp.send(t, p, "mallory", forged); code != http.StatusForbidden {
			t.Errorf("a Note attributed to alice sent by mallory answered %d, want 403", code)
		}
		edit := map[string]any{"@context": activitypub.ActivityStreamsContext, "id": "http://" + tp.host + "/updates/mallory", "type": "Update", "actor": mallory,
			"object": map[string]any{"id": note1, "type": "Note", "attributedTo": mallory, "content": "defaced"}}
		if code, _ := tp.send(t, p, "mallory", edit); code != http.StatusForbidden {
			t.Errorf("mallory's Update of alice's Note answered %d, want 403", code)
		}
		del := map[string]any{"@context": activitypub.ActivityStreamsContext, "id": "http://" + tp.host + "/deletes/mallory", "type": "Delete", "actor": mallory, "object": note1}
		if code, _ := tp.send(t, p, "mallory", del); code != http.StatusForbidden {
			t.Errorf("mallory's Delete of alice's Note answered %d, want 403", code)
		}
		if n := writes(); n != before {
			t.Errorf("refused activities queued %d forge writes", n-before)
		}
	})

	t.Run("Update edits the comment and Delete removes it", func(t *testing.T) {
		update := map[string]any{"@context": activitypub.ActivityStreamsContext, "id": "http://" + tp.host + "/updates/1", "type": "Update", "actor": alice,
			"object": map[string]any{"id": note1, "type": "Note", "attributedTo": alice, "inReplyTo": ticket1,
				"source": map[string]any{"content": "Fixed in *v3*.", "mediaType": "text/markdown"}}}
		if code, body := tp.send(t, p, "alice", update); code != http.StatusAccepted {
			t.Fatalf("Update answered %d %s", code, body)
		}
		eventually(t, 60*time.Second, func() error {
			if cs := comments(); len(cs) != 1 || !strings.HasPrefix(cs[0].Body, "Fixed in *v3*.") {
				return fmt.Errorf("comments %v", commentBodies(cs))
			}
			return nil
		})
		del := map[string]any{"@context": activitypub.ActivityStreamsContext, "id": "http://" + tp.host + "/deletes/1", "type": "Delete", "actor": alice,
			"object": map[string]any{"id": note1, "type": "Tombstone"}}
		if code, body := tp.send(t, p, "alice", del); code != http.StatusAccepted {
			t.Fatalf("Delete answered %d %s", code, body)
		}
		eventually(t, 60*time.Second, func() error {
			if cs := comments(); len(cs) != 0 {
				return fmt.Errorf("comments %v", cs)
			}
			return nil
		})
		eventually(t, 30*time.Second, func() error {
			if r := getAS2(t, p.alpha, "/actors/tracker/issues/1/replies"); fmt.Sprint(r["totalItems"]) != "0" {
				return fmt.Errorf("replies after the deletion: %v", r["orderedItems"])
			}
			return nil
		})
		// The Note is gone: a later Update of it writes nothing.
		before := writes()
		late := map[string]any{"@context": activitypub.ActivityStreamsContext, "id": "http://" + tp.host + "/updates/late", "type": "Update", "actor": alice,
			"object": map[string]any{"id": note1, "type": "Note", "attributedTo": alice, "content": "late"}}
		if code, body := tp.send(t, p, "alice", late); code != http.StatusAccepted || writes() != before {
			t.Errorf("Update of a deleted Note answered %d %s and queued %d writes", code, body, writes()-before)
		}
	})

	t.Run("refusals: no tickets, unknown actor, oversized", func(t *testing.T) {
		plainOffer := "http://" + tp.host + "/offers/plain"
		if code, body := tp.send(t, p, "alice", offer(plainOffer, alice, p.alpha.base()+"/actors/plain", "To a service", "x")); code != http.StatusAccepted {
			t.Errorf("Offer to an actor without tickets answered %d %s, want 202 and a Reject", code, body)
		}
		rej := waitAnswer(t, "Reject", plainOffer)
		if !strings.Contains(fmt.Sprint(rej["summary"]), "takes no tickets") {
			t.Errorf("Reject = %v, want the reason in summary", rej)
		}
		if code, _ := tp.send(t, p, "alice", offer("http://"+tp.host+"/offers/nobody", alice, p.alpha.base()+"/actors/nobody", "To no one", "x")); code != http.StatusNotFound {
			t.Errorf("Offer to an unknown actor answered %d, want 404", code)
		}
		big := "http://" + tp.host + "/offers/big"
		if code, _ := tp.send(t, p, "alice", offer(big, alice, tracker, "Too big", strings.Repeat("a", 65<<10))); code != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized Ticket answered %d, want 413", code)
		}
		waitAnswer(t, "Reject", big)
		if n := len(issuesTitled("Too big")) + len(issuesTitled("To a service")); n != 0 {
			t.Errorf("refused offers opened %d issues", n)
		}
	})

	t.Run("a forge that is down delays the issue; kubectl shows it waiting", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		closed := "http://" + ln.Addr().String()
		must(t, ln.Close())
		setForgeURL := func(u string) {
			var a fedv1.FederatedActor
			must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "tracker"}, &a))
			base := a.DeepCopy()
			a.Spec.Forge.URL = u
			must(t, p.k8s.Patch(ctx, &a, client.MergeFrom(base)))
		}
		setForgeURL(closed)
		// The server reads the actor from its cache: wait until it writes to the closed port.
		down := "http://" + tp.host + "/offers/down"
		eventually(t, 30*time.Second, func() error {
			var a fedv1.FederatedActor
			must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "tracker"}, &a))
			if a.Spec.Forge.URL != closed {
				return fmt.Errorf("spec not updated")
			}
			return nil
		})
		time.Sleep(time.Second) // the server's informer follows the API server
		if code, body := tp.send(t, p, "alice", offer(down, alice, tracker, "While down", "waits")); code != http.StatusAccepted {
			t.Fatalf("Offer answered %d %s", code, body)
		}
		eventually(t, 60*time.Second, func() error {
			var fs fedv1.FederationServer
			must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "forge"}, &fs))
			if w := fs.Status.ForgeWrites; w == nil || w.Pending < 1 || w.Retrying < 1 || w.OldestPendingSince == nil {
				return fmt.Errorf("status.forgeWrites = %+v", w)
			}
			return nil
		})
		if n := len(tp.answers("Accept", down)); n != 0 {
			t.Fatalf("accepted before the forge wrote the issue")
		}
		setForgeURL(api.url)
		accept := waitAnswer(t, "Accept", down)
		is := issuesTitled("While down")
		if len(is) != 1 || accept["result"] != fmt.Sprintf("%s/issues/%d", tracker, is[0].Index) {
			t.Errorf("issues %v, Accept %v", is, accept)
		}
		eventually(t, 60*time.Second, func() error {
			var fs fedv1.FederationServer
			must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "forge"}, &fs))
			if w := fs.Status.ForgeWrites; w == nil || w.Pending != 0 {
				return fmt.Errorf("status.forgeWrites = %+v", w)
			}
			return nil
		})
	})

	t.Run("an Offer from a host a policy refuses is rejected and writes nothing", func(t *testing.T) {
		must(t, p.k8s.Create(ctx, &fedv1.FederationPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "deny-peer"},
			Spec:       fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: "forge"}, Mode: fedv1.PolicyDenylist, Hosts: []string{tp.host}},
		}))
		p.enforced(t, "alpha", "deny-peer")
		before := writes()
		denied := "http://" + tp.host + "/offers/denied"
		if code, body := tp.send(t, p, "alice", offer(denied, alice, tracker, "From a refused host", "x")); code != http.StatusAccepted {
			t.Errorf("Offer from a refused host answered %d %s, want 202 and a Reject", code, body)
		}
		rej := waitAnswer(t, "Reject", denied)
		if !strings.Contains(fmt.Sprint(rej["summary"]), "does not take tickets from "+tp.host) {
			t.Errorf("Reject = %v, want the policy named in summary", rej)
		}
		if n := writes(); n != before {
			t.Errorf("an Offer from a refused host queued %d forge writes", n-before)
		}
	})
}

func commentBodies(cs []*sdk.Comment) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Body)
	}
	return out
}
