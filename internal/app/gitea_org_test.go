package app

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
	"github.com/fedforge/fedforge/internal/store"
)

// TestRealGiteaOrganizationAndTopicActors drives two actors from a real Gitea's
// organization-level hooks, with no recorded payload: "acme", an Organization actor
// fronting the Gitea organization acme, and "topic-space", a Group actor standing for
// the topic "space" (a source with topics: [space] selecting Repository). A follower on
// beta follows both. Gitea sends `repository` (created) only to organization and system
// hooks, lists no topics in it, and sends nothing when topics change; these are the
// behaviours under test.
func TestRealGiteaOrganizationAndTopicActors(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	p := newPair(t)
	ctx := context.Background()
	const secret = "gitea-org-secret"

	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "gitea-org"},
		StringData: map[string]string{"secret": secret}}))
	hookSecret := &fedv1.SecretKeyReference{Name: "gitea-org", Key: "secret"}
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "acme"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorOrganization,
			PreferredUsername: "acme", Name: "acme on Gitea",
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea, SecretRef: hookSecret,
				Events: []string{"Repository", "Release", "Push"}}}},
	}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "topic-space"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorGroup,
			PreferredUsername: "topic-space", Name: "#space on Gitea",
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea, SecretRef: hookSecret,
				Topics: []string{"space"}, Events: []string{"Repository"}}}},
	}))
	waitServed(t, p.alpha, "acme")
	waitServed(t, p.alpha, "topic-space")
	p.actor(t, p.beta, "watcher", "watcher", false)
	for _, a := range []string{"acme", "topic-space"} {
		p.follow(t, p.beta, "watch-"+a, "watcher", "acct:"+a+"@"+alphaHost)
		p.phase(t, "beta", "watch-"+a, fedv1.PhaseAccepted)
		eventually(t, 30*time.Second, func() error {
			if n := followersCount(t, p, "alpha", a); n != 1 {
				return fmt.Errorf("alpha/%s has %d followers", a, n)
			}
			return nil
		})
	}
	beta, err := store.Open(ctx, p.beta.dsn)
	must(t, err)
	t.Cleanup(func() { _ = beta.Close() })
	watcher := p.beta.base() + "/actors/watcher"
	acmeID, topicID := p.alpha.base()+"/actors/acme", p.alpha.base()+"/actors/topic-space"
	alphaDB, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(p.alpha.dsn, "sqlite://")+"?mode=ro")
	must(t, err)
	t.Cleanup(func() { _ = alphaDB.Close() })
	// published counts what alpha's actor has published of type typ mentioning contains.
	published := func(t *testing.T, actor, typ, contains string) int {
		t.Helper()
		var n int
		must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM activities WHERE actor_id = ? AND type = ? AND instr(CAST(raw AS TEXT), ?) > 0`,
			actor, typ, contains).Scan(&n))
		return n
	}
	// post waits for the follower to receive, from actor, a Create whose Note's content
	// contains every one of want, and returns the Note.
	post := func(t *testing.T, actor string, want ...string) *activitypub.Object {
		t.Helper()
		var note *activitypub.Object
		eventually(t, 90*time.Second, func() error {
		next:
			for _, r := range receivedOf(t, beta, watcher, "Create") {
				d, err := activitypub.DecodeObject(r.Raw)
				if err != nil || r.ActorID != actor || d.Object.Object == nil {
					continue
				}
				for _, w := range want {
					if !strings.Contains(d.Object.Object.Content, w) {
						continue next
					}
				}
				note = d.Object.Object
				return nil
			}
			return fmt.Errorf("no post from %s containing %q", actor, want)
		})
		return note
	}
	relay, relayURL := startHookRelay(t, p)
	// answered waits until alpha has answered Gitea's delivery of event for repo on the
	// hook at path, and checks it answered want.
	answered := func(t *testing.T, path, event, repo string, want int) {
		t.Helper()
		eventually(t, 90*time.Second, func() error {
			calls := relay.answered(func(c hookCall) bool { return c.path == path && c.event == event && c.repo == repo })
			if len(calls) == 0 {
				return fmt.Errorf("Gitea has not delivered %s of %s to %s yet", event, repo, path)
			}
			for _, c := range calls {
				if c.status != want {
					return fmt.Errorf("alpha answered %+v, want %d", c, want)
				}
			}
			return nil
		})
	}

	g.CreateOrg(t, "acme")
	events := []string{"repository", "push", "release", "create"}
	g.CreateOrgWebhook(t, "acme", relayURL+"/hooks/acme/gitea", secret, events...)
	g.CreateOrgWebhook(t, "acme", relayURL+"/hooks/topic-space/gitea", secret, events...)
	orgPage := g.URL + "/acme"

	// A template carrying the topic, and a repository generated from it with its topics:
	// Gitea's `repository` event lists no topics; Fedforge reads them from the forge.
	g.CreateOrgRepo(t, "acme", gitea.CreateRepoOption{Name: "seed", AutoInit: true, Template: true})
	g.SetTopics(t, "acme", "seed", "space")
	rocket, _, err := g.Client.CreateRepoFromTemplate("acme", "seed", gitea.CreateRepoFromTemplateOption{
		Owner: "acme", Name: "rocket", Description: "A rocket to the moon", GitContent: true, Topics: true})
	if err != nil {
		t.Fatalf("generate acme/rocket from acme/seed on %s: %v", g.URL, err)
	}
	rocketPage := orgPage + "/rocket"
	if rocket.HTMLURL != rocketPage {
		t.Fatalf("rocket's page is %s, want %s", rocket.HTMLURL, rocketPage)
	}

	t.Run("a repository created with the topic reaches the topic actor's follower", func(t *testing.T) {
		note := post(t, topicID, `created <a href="`+rocketPage+`"`)
		if !strings.Contains(note.Content, `<a href="`+g.URL+`/`+g.AdminUser+`"`) || !strings.Contains(note.Content, ">"+g.AdminUser+"</a>") {
			t.Errorf("post does not name its creator with a link to the Gitea profile: %s", note.Content)
		}
		tagHref := p.alpha.base() + "/tags/space"
		if !strings.Contains(note.Content, ` in <a href="`+tagHref+`" class="mention hashtag" rel="tag">#<span>Space</span></a>`) {
			t.Errorf("post does not say 'in #Space' with a Mastodon hashtag link to %s: %s", tagHref, note.Content)
		}
		if !strings.Contains(note.Content, "A rocket to the moon") {
			t.Errorf("post lacks the repository's description: %s", note.Content)
		}
		var tagged bool
		for _, tag := range note.Tag {
			if o := tag.Object; o != nil && o.Type.Has(activitypub.TypeHashtag) && o.Name == "#Space" && o.Href == tagHref {
				tagged = true
			}
		}
		if !tagged {
			t.Errorf("post has no Hashtag #Space with href %s: %+v", tagHref, note.Tag)
		}
		if ids := note.URL.IDs(); len(ids) != 1 || ids[0] != rocketPage {
			t.Errorf("post links %v, want the Gitea page %s", note.URL, rocketPage)
		}
	})

	t.Run("the organization actor's follower hears of every repository created", func(t *testing.T) {
		post(t, acmeID, `created <a href="`+rocketPage+`">acme/rocket</a>`)
		post(t, acmeID, `created <a href="`+orgPage+`/seed">acme/seed</a>`)
	})

	t.Run("a repository without the topic does not reach the topic actor", func(t *testing.T) {
		g.CreateOrgRepo(t, "acme", gitea.CreateRepoOption{Name: "plain"})
		answered(t, "/hooks/topic-space/gitea", "repository", "acme/plain", http.StatusAccepted)
		post(t, acmeID, `created <a href="`+orgPage+`/plain">acme/plain</a>`)
		if n := published(t, topicID, "Create", "acme/plain"); n != 0 {
			t.Errorf("topic-space published %d posts about acme/plain, which has no topic", n)
		}
	})

	t.Run("a push and a release in member repositories reach the organization's follower", func(t *testing.T) {
		work := t.TempDir()
		git := func(args ...string) string { return giteatest.Git(t, work, g.AdminUser, g.Token, args...) }
		git("init", "-q")
		must(t, os.WriteFile(filepath.Join(work, "README"), []byte("plain\n"), 0o644))
		git("add", ".")
		git("commit", "-q", "-m", "Plain start")
		sha := git("rev-parse", "HEAD")
		git("push", "-q", orgPage+"/plain.git", "main")
		note := post(t, acmeID, sha[:7], `<a href="`+orgPage+`/plain">acme/plain</a>`)
		if !strings.Contains(note.Content, "Plain start") {
			t.Errorf("push post %s, want the commit's summary", note.Content)
		}
		eventually(t, 30*time.Second, func() error {
			for _, r := range receivedOf(t, beta, watcher, "Push") {
				if r.ActorID == acmeID && strings.Contains(string(r.Raw), sha) {
					return nil
				}
			}
			return fmt.Errorf("no ForgeFed Push of %s from acme", sha)
		})

		rel, _, err := g.Client.CreateRelease("acme", "rocket", gitea.CreateReleaseOption{
			TagName: "v1.0", Target: "main", Title: "Liftoff", Note: "First flight."})
		if err != nil {
			t.Fatalf("release of acme/rocket on %s: %v", g.URL, err)
		}
		note = post(t, acmeID, rel.HTMLURL)
		if !strings.Contains(note.Content, "rocket v1.0") || !strings.Contains(note.Content, "Liftoff") {
			t.Errorf("release post %s, want the repository, version and title", note.Content)
		}
		// The release also reached the topic actor's hook, in a repository it announced
		// already: the same announcement again, which the outbox keeps once.
		answered(t, "/hooks/topic-space/gitea", "release", "acme/rocket", http.StatusAccepted)
		if n := published(t, topicID, "Create", rocketPage); n != 1 {
			t.Errorf("topic-space published %d posts about acme/rocket, want 1", n)
		}
	})

	t.Run("a repository given the topic after its creation is announced with its next event", func(t *testing.T) {
		g.CreateOrgRepo(t, "acme", gitea.CreateRepoOption{Name: "later"})
		answered(t, "/hooks/topic-space/gitea", "repository", "acme/later", http.StatusAccepted)
		g.SetTopics(t, "acme", "later", "space", "rust")
		work := t.TempDir()
		git := func(args ...string) string { return giteatest.Git(t, work, g.AdminUser, g.Token, args...) }
		git("init", "-q")
		must(t, os.WriteFile(filepath.Join(work, "README"), []byte("later\n"), 0o644))
		git("add", ".")
		git("commit", "-q", "-m", "Later start")
		git("push", "-q", orgPage+"/later.git", "main")
		note := post(t, topicID, `<a href="`+orgPage+`/later">acme/later</a> is now in`)
		if !strings.Contains(note.Content, "#<span>Space</span>") || !strings.Contains(note.Content, "#<span>Rust</span>") {
			t.Errorf("post %s, want #Space in the sentence and #Rust among the hashtags", note.Content)
		}
		if n := published(t, topicID, "Push", "acme/later"); n != 0 {
			t.Errorf("topic-space published %d ForgeFed Pushes; it selects Repository only", n)
		}
	})

	t.Run("a private repository of the organization is not published", func(t *testing.T) {
		g.CreateOrgRepo(t, "acme", gitea.CreateRepoOption{Name: "secret", Private: true})
		work := t.TempDir()
		git := func(args ...string) string { return giteatest.Git(t, work, g.AdminUser, g.Token, args...) }
		git("init", "-q")
		must(t, os.WriteFile(filepath.Join(work, "README"), []byte("secret\n"), 0o644))
		git("add", ".")
		git("commit", "-q", "-m", "Secret start")
		git("push", "-q", orgPage+"/secret.git", "main")
		answered(t, "/hooks/acme/gitea", "repository", "acme/secret", http.StatusAccepted)
		answered(t, "/hooks/acme/gitea", "push", "acme/secret", http.StatusAccepted)
		for _, typ := range []string{"Create", "Push"} {
			if n := published(t, acmeID, typ, "acme/secret"); n != 0 {
				t.Errorf("acme published %d %s activities about its private repository acme/secret", n, typ)
			}
		}
	})

	t.Run("an organization hook with a wrong HMAC is 401 and stores nothing", func(t *testing.T) {
		g.CreateOrg(t, "forged")
		g.CreateOrgWebhook(t, "forged", relayURL+"/hooks/acme/gitea", "not-the-secret", events...)
		g.CreateOrgRepo(t, "forged", gitea.CreateRepoOption{Name: "decoy"})
		answered(t, "/hooks/acme/gitea", "repository", "forged/decoy", http.StatusUnauthorized)
		// Deliveries of the acme hooks may still be arriving: count only what the forged
		// organization could have caused.
		var n int
		must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM activities WHERE instr(CAST(raw AS TEXT), ?) > 0`, "forged/").Scan(&n))
		if n != 0 {
			t.Errorf("alpha stored %d activities for an organization hook with a wrong HMAC", n)
		}
	})
}
