package app

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestMentionTicketsIntoRealGitea: a Mastodon user files a bug by mentioning a Repository
// actor that takes tickets from mentions. The Note (shaped as Mastodon sends it: an h-card
// mention in the content, a Mention tag, the actor in cc) opens an issue in a real Gitea
// with one forge call; the author gets a signed reply Note linking the issue and naming
// the Ticket; replies in the thread, to either Note, become comments; a Note with nothing
// but the mention is answered with why; the same mention of an actor without
// fromMentions opens nothing.
func TestMentionTicketsIntoRealGitea(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	tp := newTicketPeer(t)
	p := newPair(t, tp.host+"="+tp.addr)
	tp.attach(p.alpha.listen)
	ctx := context.Background()
	repo := g.CreateRepo(t, "bugs")
	bot := g.CreateUser(t, "fedforge-bot", "read:repository", "write:issue")
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token}}))
	api := startAPICounter(t, g.URL)
	forgeSpec := &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: api.url, Project: repo.FullName, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}}
	for name, tickets := range map[string]*fedv1.TicketsSpec{"bugs": {FromMentions: true}, "quiet": nil} {
		spec := fedv1.FederatedActorSpec{Type: fedv1.ActorRepository, Forge: forgeSpec, Tickets: tickets,
			ServerRef: fedv1.LocalObjectReference{Name: "forge"}, PreferredUsername: name}
		must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: name}, Spec: spec}))
		waitServed(t, p.alpha, name)
	}
	alphaDB, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(p.alpha.dsn, "sqlite://")+"?mode=ro")
	must(t, err)
	t.Cleanup(func() { _ = alphaDB.Close() })
	writes := func() int {
		var n int
		must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM forge_writes`).Scan(&n))
		return n
	}
	bugs, quiet := p.alpha.base()+"/actors/bugs", p.alpha.base()+"/actors/quiet"
	alice, mallory := tp.actor("alice"), tp.actor("mallory")
	owner, name := repo.Owner.UserName, repo.Name
	issues := func() []*sdk.Issue {
		list, _, err := g.Client.ListRepoIssues(owner, name, sdk.ListIssueOption{State: sdk.StateAll, Type: sdk.IssueTypeIssue})
		must(t, err)
		return list
	}
	// mastodonNote is a Create{Note} as Mastodon 4 sends a public post mentioning actor.
	mastodonNote := func(author, status, actor, text string, extra map[string]any) map[string]any {
		noteID := author + "/statuses/" + status
		user := author[strings.LastIndex(author, "/")+1:]
		handle := actor[strings.LastIndex(actor, "/")+1:]
		note := map[string]any{
			"id": noteID, "type": "Note", "summary": nil, "inReplyTo": nil, "published": "2026-12-03T10:00:00Z",
			"url": "http://" + tp.host + "/@" + user + "/" + status, "attributedTo": author,
			"to": []string{activitypub.PublicIRI}, "cc": []string{author + "/followers", actor},
			"sensitive": false, "atomUri": noteID, "conversation": "tag:" + tp.host + ",2026-12-03:objectId=" + status + ":objectType=Conversation",
			"content": `<p><span class="h-card" translate="no"><a href="` + p.alpha.base() + `/@` + handle + `" class="u-url mention">@<span>` +
				handle + `</span></a></span> ` + text + `</p>`,
			"tag":        []map[string]any{{"type": "Mention", "href": actor, "name": "@" + handle + "@" + alphaHost}},
			"attachment": []any{},
			"replies":    map[string]any{"id": noteID + "/replies", "type": "Collection", "first": map[string]any{"type": "CollectionPage", "next": noteID + "/replies?page=true", "partOf": noteID + "/replies", "items": []any{}}},
		}
		for k, v := range extra {
			note[k] = v
		}
		return map[string]any{
			"@context": []any{activitypub.ActivityStreamsContext, map[string]any{"ostatus": "http://ostatus.org#", "atomUri": "ostatus:atomUri", "conversation": "ostatus:conversation", "sensitive": "as:sensitive"}},
			"id":       noteID + "/activity", "type": "Create", "actor": author, "published": "2026-12-03T10:00:00Z",
			"to": note["to"], "cc": note["cc"], "object": note,
		}
	}
	// replyTo finds the verified Create{Note} that answers a Note.
	replyTo := func(noteID string) (map[string]any, map[string]any) {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		for _, d := range tp.got {
			if n, ok := d["object"].(map[string]any); ok && d["type"] == "Create" && n["inReplyTo"] == noteID {
				return d, n
			}
		}
		return nil, nil
	}
	waitReply := func(t *testing.T, noteID string) (map[string]any, map[string]any) {
		t.Helper()
		var create, note map[string]any
		eventually(t, 90*time.Second, func() error {
			if create, note = replyTo(noteID); create == nil {
				return fmt.Errorf("no verified reply to %s yet (unverified: %v)", noteID, tp.unverified)
			}
			return nil
		})
		return create, note
	}

	bug := alice + "/statuses/100"
	var replyID string
	t.Run("a Mastodon Note mentioning the repository opens an issue and is answered with its link", func(t *testing.T) {
		api.reset()
		create := mastodonNote(alice, "100", bugs, "The build fails on arm64. It stops at the <b>linker</b> step.", nil)
		if code, body := tp.send(t, p, "alice", create); code != http.StatusAccepted {
			t.Fatalf("Create answered %d %s", code, body)
		}
		act, note := waitReply(t, bug)
		is := issues()
		if len(is) != 1 || is[0].Title != "The build fails on arm64" || is[0].Poster.UserName != "fedforge-bot" {
			t.Fatalf("issues = %v, want one titled with the first sentence, by the bot", is)
		}
		for _, want := range []string{"It stops at the <b>linker</b> step.", "Opened on the Fediverse by", "(<" + alice + ">)", "[original](<" + bug + ">)"} {
			if !strings.Contains(is[0].Body, want) {
				t.Errorf("issue body lacks %q:\n%s", want, is[0].Body)
			}
		}
		if calls := api.issueCalls(); fmt.Sprint(calls) != "[POST /api/v1/repos/"+repo.FullName+"/issues]" {
			t.Errorf("forge API calls for one mention: %v, want the one POST", calls)
		}
		ticket := fmt.Sprintf("%s/issues/%d", bugs, is[0].Index)
		replyID, _ = note["id"].(string)
		content := fmt.Sprint(note["content"])
		if act["actor"] != bugs || fmt.Sprint(note["attributedTo"]) != "["+bugs+"]" || fmt.Sprint(note["to"]) != "["+alice+"]" || fmt.Sprint(act["to"]) != "["+alice+"]" ||
			!strings.HasPrefix(replyID, bugs+"/objects/") || note["context"] != ticket {
			t.Errorf("reply = %v, want a Note of %s to alice alone, in the Ticket's context", act, bugs)
		}
		for _, want := range []string{`href="` + g.URL + "/" + repo.FullName + fmt.Sprintf(`/issues/%d"`, is[0].Index), ticket, `class="u-url mention"`, "@alice@" + tp.host} {
			if !strings.Contains(content, want) {
				t.Errorf("reply content lacks %q: %s", want, content)
			}
		}
		if tags := fmt.Sprint(note["tag"]); !strings.Contains(tags, "Mention") || !strings.Contains(tags, alice) {
			t.Errorf("reply tags = %s, want a Mention of alice", tags)
		}
		if n := len(tp.answers("Accept", create["id"].(string))); n != 0 {
			t.Errorf("a mention was answered with %d Accepts", n)
		}
		if doc := getAS2(t, p.alpha, strings.TrimPrefix(ticket, p.alpha.base())); fmt.Sprint(doc["attributedTo"]) != "["+alice+"]" {
			t.Errorf("Ticket attributedTo = %v, want alice", doc["attributedTo"])
		}
	})

	t.Run("the same Note again opens nothing and is answered once", func(t *testing.T) {
		before := writes()
		create := mastodonNote(alice, "100", bugs, "The build fails on arm64. It stops at the <b>linker</b> step.", nil)
		create["id"] = bug + "/activity-again" // a relay or a second delivery under another activity id
		if code, body := tp.send(t, p, "alice", create); code != http.StatusAccepted {
			t.Fatalf("repeated Create answered %d %s", code, body)
		}
		if n := writes(); n != before {
			t.Errorf("the repeated Note queued %d forge writes", n-before)
		}
		if n := len(issues()); n != 1 {
			t.Errorf("%d issues, want 1", n)
		}
	})

	comments := func() []*sdk.Comment {
		cs, _, err := g.Client.ListIssueComments(owner, name, 1, sdk.ListIssueCommentOptions{})
		must(t, err)
		return cs
	}
	t.Run("replies in the thread, to our answer or to the first Note, become comments", func(t *testing.T) {
		if replyID == "" {
			t.Skip("no reply Note: the first subtest failed")
		}
		api.reset()
		// Mastodon mentions the author of the post replied to: the reply mentions the repository too.
		toAnswer := mastodonNote(alice, "101", bugs, "It also fails with <i>gcc 14</i>.", map[string]any{"inReplyTo": replyID})
		if code, body := tp.send(t, p, "alice", toAnswer); code != http.StatusAccepted {
			t.Fatalf("reply answered %d %s", code, body)
		}
		toFirst := mastodonNote(mallory, "7", bugs, "Same on my Raspberry Pi.", map[string]any{"inReplyTo": bug})
		if code, body := tp.send(t, p, "mallory", toFirst); code != http.StatusAccepted {
			t.Fatalf("reply answered %d %s", code, body)
		}
		eventually(t, 60*time.Second, func() error {
			cs := comments()
			if len(cs) != 2 {
				return fmt.Errorf("comments %v", commentBodies(cs))
			}
			all := strings.Join(commentBodies(cs), "\n")
			for _, want := range []string{"It also fails with <i>gcc 14</i>.", "(<" + alice + ">)", "Same on my Raspberry Pi.", "(<" + mallory + ">)"} {
				if !strings.Contains(all, want) {
					return fmt.Errorf("comments lack %q: %v", want, all)
				}
			}
			return nil
		})
		if n := len(issues()); n != 1 {
			t.Errorf("replies in the thread opened issues: %d, want 1", n)
		}
		if r, _ := replyTo(alice + "/statuses/101"); r != nil {
			t.Errorf("a reply in the thread was answered like a new bug: %v", r)
		}
	})

	t.Run("a Note with nothing but the mention is answered with why", func(t *testing.T) {
		before := writes()
		empty := alice + "/statuses/102"
		if code, body := tp.send(t, p, "alice", mastodonNote(alice, "102", bugs, "", nil)); code != http.StatusAccepted {
			t.Fatalf("Create answered %d %s", code, body)
		}
		_, note := waitReply(t, empty)
		if c := fmt.Sprint(note["content"]); !strings.Contains(c, "No issue was opened") || !strings.Contains(c, "no text") {
			t.Errorf("refusal = %s, want the reason", c)
		}
		if n := writes(); n != before {
			t.Errorf("an empty mention queued %d forge writes", n-before)
		}
	})

	t.Run("without fromMentions a mention opens nothing and is not answered", func(t *testing.T) {
		before := writes()
		if code, body := tp.send(t, p, "alice", mastodonNote(alice, "200", quiet, "Please add a dark theme.", nil)); code != http.StatusAccepted {
			t.Fatalf("Create answered %d %s", code, body)
		}
		// The Note is filed in the actor's inbox, as any post is; nothing else happens.
		eventually(t, 30*time.Second, func() error {
			var n int
			must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM received WHERE id = ?`, alice+"/statuses/200/activity").Scan(&n))
			if n != 1 {
				return fmt.Errorf("the Note was not recorded")
			}
			return nil
		})
		if n := writes(); n != before {
			t.Errorf("a mention of an actor without fromMentions queued %d forge writes", n-before)
		}
		if n := len(issues()); n != 1 {
			t.Errorf("%d issues, want 1", n)
		}
		if r, _ := replyTo(alice + "/statuses/200"); r != nil {
			t.Errorf("a mention without fromMentions was answered: %v", r)
		}
	})
}
