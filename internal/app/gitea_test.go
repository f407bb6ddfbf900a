package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// hookCall is one webhook delivery from Gitea as the relay in front of alpha saw it.
type hookCall struct {
	event  string // X-Gitea-Event
	ref    string // "ref" of a push, "release.tag_name" of a release
	repo   string // repository.full_name
	status int    // what alpha answered
	path   string // the webhook path (which actor and source)
}

// hookRelay sits between Gitea and alpha's webhook endpoint on its own loopback address
// and records what alpha answered to each delivery: Gitea delivers seconds later and in
// any order, so the test waits for a delivery to have been answered instead of sleeping.
// alpha answers a delivery once it is queued and processes it afterwards; a queued
// delivery is recorded only once alpha's worker has finished it (its webhook_events row
// is no longer pending), so that what a test reads after it, an activity or the absence
// of one, is a fact and not a race. Gitea itself has its answer at once.
type hookRelay struct {
	mu    sync.Mutex
	calls []hookCall
}

func (h *hookRelay) answered(match func(hookCall) bool) []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookCall
	for _, c := range h.calls {
		if match(c) {
			out = append(out, c)
		}
	}
	return out
}

// startHookRelay forwards to alpha's listener with alpha's Host, on 127.0.0.4.
func startHookRelay(t *testing.T, p *pair) (*hookRelay, string) {
	t.Helper()
	h := &hookRelay{}
	db := openStoreReadOnly(t, p.alpha.dsn)
	target := &url.URL{Scheme: "http", Host: p.alpha.listen}
	proxy := httputil.NewSingleHostReverseProxy(target)
	direct := proxy.Director
	proxy.Director = func(r *http.Request) { direct(r); r.Host = alphaHost }
	ln, err := net.Listen("tcp", "127.0.0.4:0")
	must(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var payload struct {
			Ref     string `json:"ref"`
			Release struct {
				TagName string `json:"tag_name"`
			} `json:"release"`
			Repository struct {
				FullName string `json:"full_name"`
			} `json:"repository"`
		}
		_ = json.Unmarshal(body, &payload)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		proxy.ServeHTTP(rec, r)
		call := hookCall{event: r.Header.Get("X-Gitea-Event"),
			ref: payload.Ref + payload.Release.TagName, repo: payload.Repository.FullName, status: rec.status, path: r.URL.Path}
		go func() {
			if rec.status == http.StatusAccepted {
				waitWebhookProcessed(db, p.alpha.dsn, r.URL.Path, r.Header.Get("X-Gitea-Delivery"))
			}
			h.mu.Lock()
			h.calls = append(h.calls, call)
			h.mu.Unlock()
		}()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h, "http://" + ln.Addr().String()
}

// openStoreReadOnly opens an instance's database for reading its tables directly.
func openStoreReadOnly(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if path, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		db, err = sql.Open("sqlite", "file:"+path+"?mode=ro")
	} else {
		db, err = sql.Open("pgx", dsn)
	}
	must(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// waitWebhookProcessed waits (at most two minutes) until the webhook queue holds no
// pending row for the delivery id on the hook at path (/hooks/{username}/{source}); a
// delivery without an id, or one never queued, has nothing to wait for. The key is the
// one internal/store/webhook_events.go gives the row.
func waitWebhookProcessed(db *sql.DB, dsn, path, delivery string) {
	parts := strings.Split(strings.TrimPrefix(path, "/hooks/"), "/")
	if delivery == "" || len(parts) != 2 {
		return
	}
	key := parts[0] + "\n" + parts[1] + "\n" + delivery
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var pending int
		q := `SELECT count(*) FROM webhook_events WHERE delivery_key = ? AND state = 0`
		if !strings.HasPrefix(dsn, "sqlite://") {
			q = strings.Replace(q, "?", "$1", 1)
		}
		if err := db.QueryRow(q, key).Scan(&pending); err != nil {
			return // the test is over, or the database is gone: nothing more to wait for
		}
		if pending == 0 {
			return
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// receivedOf returns what beta's watcher has received of the given type, oldest first.
func receivedOf(t *testing.T, st store.Store, watcher, typ string) []store.Received {
	t.Helper()
	page, err := st.ListReceived(context.Background(), watcher, "", 500)
	must(t, err)
	var out []store.Received
	for i := len(page.Items) - 1; i >= 0; i-- {
		if page.Items[i].Type == typ {
			out = append(out, page.Items[i])
		}
	}
	return out
}

// TestRealGiteaReachesFollowers drives Fedforge from a real Gitea, with no recorded
// payload: a Repository actor whose source is a Gitea webhook, a follower on another
// loopback address, and then a real `git push` of two commits, a release with a new tag,
// and a webhook signed with the wrong secret.
func TestRealGiteaReachesFollowers(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	p := newPair(t)
	ctx := context.Background()
	const secret = "gitea-hook-secret"

	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "gitea-hook"},
		StringData: map[string]string{"secret": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "demo"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "demo", Name: "demo",
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "gitea-hook", Key: "secret"},
				Events:    []string{"Push", "Release", "Tag"}}}},
	}))
	waitServed(t, p.alpha, "demo")
	watcher, beta := p.watchDemo(t)
	alphaDB, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(p.alpha.dsn, "sqlite://")+"?mode=ro")
	must(t, err)
	t.Cleanup(func() { _ = alphaDB.Close() })
	published := func(typ, contains string) int {
		var n int
		must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM activities WHERE type = ? AND instr(CAST(raw AS TEXT), ?) > 0`, typ, contains).Scan(&n))
		return n
	}

	relay, relayURL := startHookRelay(t, p)
	repo := g.CreateRepo(t, "demo")
	owner := repo.Owner.UserName
	g.CreateWebhook(t, owner, repo.Name, relayURL+"/hooks/demo/gitea", secret, "push", "release")
	repoPage := g.URL + "/" + owner + "/" + repo.Name

	// (a) Two commits pushed over HTTP with Debian's git.
	work := t.TempDir()
	git := func(args ...string) string { return giteatest.Git(t, work, g.AdminUser, g.Token, args...) }
	git("init", "-q")
	var shas, summaries []string
	for i, msg := range []string{"Add the README\n\nIt says what demo is.", "Say hello"} {
		must(t, os.WriteFile(filepath.Join(work, fmt.Sprintf("file%d.txt", i)), []byte(msg+"\n"), 0o644))
		git("add", ".")
		git("commit", "-q", "-m", msg)
		shas = append(shas, git("rev-parse", "HEAD"))
		summaries = append(summaries, strings.SplitN(msg, "\n", 2)[0])
	}
	git("push", "-q", repo.CloneURL, "main")

	t.Run("a git push reaches the follower as a ForgeFed Push and a post", func(t *testing.T) {
		var push store.Received
		eventually(t, 90*time.Second, func() error {
			got := receivedOf(t, beta, watcher, "Push")
			if len(got) == 0 {
				return fmt.Errorf("no Push received; deliveries answered by alpha: %+v", relay.answered(func(hookCall) bool { return true }))
			}
			push = got[0]
			return nil
		})
		var doc struct {
			Actor      string `json:"actor"`
			HashBefore string `json:"hashBefore"`
			HashAfter  string `json:"hashAfter"`
			URL        any    `json:"url"`
			Target     struct {
				Type, Name, Ref string
			} `json:"target"`
			Object struct {
				Type         string `json:"type"`
				TotalItems   int    `json:"totalItems"`
				OrderedItems []struct {
					Type    string `json:"type"`
					Hash    string `json:"hash"`
					Summary string `json:"summary"`
					URL     any    `json:"url"`
				} `json:"orderedItems"`
			} `json:"object"`
		}
		must(t, json.Unmarshal(push.Raw, &doc))
		if doc.Actor != p.alpha.base()+"/actors/demo" || push.ActorID != doc.Actor {
			t.Errorf("Push from %q (signed by %q), want alpha's demo", doc.Actor, push.ActorID)
		}
		if doc.Target.Type != "Branch" || doc.Target.Ref != "refs/heads/main" || doc.HashAfter != shas[1] {
			t.Errorf("Push target %+v hashAfter %s, want Branch refs/heads/main at %s", doc.Target, doc.HashAfter, shas[1])
		}
		if doc.Object.Type != "OrderedCollection" || doc.Object.TotalItems != 2 || len(doc.Object.OrderedItems) != 2 {
			t.Fatalf("Push object %+v, want an OrderedCollection of the 2 pushed commits", doc.Object)
		}
		for i, c := range doc.Object.OrderedItems {
			if c.Type != "Commit" || c.Hash != shas[i] || c.Summary != summaries[i] {
				t.Errorf("commit %d = %s %s %q, want Commit %s %q (oldest first)", i, c.Type, c.Hash, c.Summary, shas[i], summaries[i])
			}
			if want := "[" + repoPage + "/commit/" + shas[i] + "]"; fmt.Sprint(c.URL) != want {
				t.Errorf("commit %d links %v, want the Gitea page %s", i, c.URL, want)
			}
		}
		if u := fmt.Sprint(doc.URL); u != "["+repoPage+"/src/branch/main]" {
			t.Errorf("Push of a new branch links %s, want the branch's Gitea page", u)
		}
		// The post Mastodon shows: a Create of a Note naming both commits, linking Gitea.
		var note *activitypub.Object
		eventually(t, 30*time.Second, func() error {
			for _, r := range receivedOf(t, beta, watcher, "Create") {
				d, err := activitypub.DecodeObject(r.Raw)
				if err == nil && d.Object.Object != nil && strings.Contains(d.Object.Object.Content, shas[1][:7]) {
					note = d.Object.Object
					return nil
				}
			}
			return fmt.Errorf("no post of the push received")
		})
		if !note.Type.Has("Note") {
			t.Errorf("push post is a %v, want a Note", note.Type)
		}
		for i := range shas {
			if !strings.Contains(note.Content, shas[i][:7]) || !strings.Contains(note.Content, summaries[i]) ||
				!strings.Contains(note.Content, repoPage+"/commit/"+shas[i]) {
				t.Errorf("push post does not show commit %s %q with its Gitea link: %s", shas[i][:7], summaries[i], note.Content)
			}
		}
	})

	t.Run("a release with a new tag is posted once", func(t *testing.T) {
		const tag = "v1.0.0"
		rel, _, err := g.Client.CreateRelease(owner, repo.Name, gitea.CreateReleaseOption{
			TagName: tag, Target: "main", Title: "Demo 1.0", Note: "The first release."})
		if err != nil {
			t.Fatalf("create release on %s: %v", g.URL, err)
		}
		if rel.HTMLURL != repoPage+"/releases/tag/"+tag {
			t.Errorf("release page %s", rel.HTMLURL)
		}
		// Both deliveries Gitea makes for it, the release and the push of refs/tags/v1.0.0,
		// answered by alpha: only then is "published once" a fact and not a race.
		eventually(t, 90*time.Second, func() error {
			rels := relay.answered(func(c hookCall) bool { return c.event == "release" && c.ref == tag })
			tags := relay.answered(func(c hookCall) bool { return c.event == "push" && c.ref == "refs/tags/"+tag })
			if len(rels) == 0 || len(tags) == 0 {
				return fmt.Errorf("answered: release %v, tag push %v", rels, tags)
			}
			for _, c := range append(rels, tags...) {
				if c.status != http.StatusAccepted {
					return fmt.Errorf("alpha answered %+v", c)
				}
			}
			return nil
		})
		if n := published("Create", tag); n != 1 {
			t.Errorf("alpha published %d posts mentioning %s, want exactly 1 (the release)", n, tag)
		}
		if n := published("Create", rel.HTMLURL); n != 1 {
			t.Errorf("alpha published %d posts linking the release page, want 1", n)
		}
		var note *activitypub.Object
		eventually(t, 30*time.Second, func() error {
			for _, r := range receivedOf(t, beta, watcher, "Create") {
				d, err := activitypub.DecodeObject(r.Raw)
				if err == nil && d.Object.Object != nil && strings.Contains(d.Object.Object.Content, rel.HTMLURL) {
					note = d.Object.Object
					return nil
				}
			}
			return fmt.Errorf("the release post has not reached the follower")
		})
		if !strings.Contains(note.Content, "Demo 1.0") {
			t.Errorf("release post %s, want its title", note.Content)
		}
	})

	t.Run("a webhook with a wrong HMAC is 401 and stores nothing", func(t *testing.T) {
		other := g.CreateRepo(t, "forged")
		g.CreateWebhook(t, owner, other.Name, relayURL+"/hooks/demo/gitea", "not-the-secret", "push", "release")
		var total int
		must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM activities`).Scan(&total))
		w := t.TempDir()
		gitw := func(args ...string) string { return giteatest.Git(t, w, g.AdminUser, g.Token, args...) }
		gitw("init", "-q")
		must(t, os.WriteFile(filepath.Join(w, "x.txt"), []byte("x\n"), 0o644))
		gitw("add", ".")
		gitw("commit", "-q", "-m", "Forged")
		gitw("push", "-q", other.CloneURL, "main")
		var calls []hookCall
		eventually(t, 90*time.Second, func() error {
			calls = relay.answered(func(c hookCall) bool { return c.repo == other.FullName })
			if len(calls) == 0 {
				return fmt.Errorf("Gitea has not delivered the push of %s yet", other.FullName)
			}
			return nil
		})
		for _, c := range calls {
			if c.status != http.StatusUnauthorized {
				t.Errorf("delivery %+v with a wrong HMAC, want 401", c)
			}
		}
		var after int
		must(t, alphaDB.QueryRowContext(ctx, `SELECT count(*) FROM activities`).Scan(&after))
		if after != total || published("Push", other.FullName) != 0 {
			t.Errorf("alpha stored %d activities for a webhook with a wrong HMAC", after-total)
		}
	})
}

// watchDemo makes beta's actor watcher follow alpha's actor demo, waits until alpha counts
// the follower, and returns watcher's id and beta's store (to read what watcher received).
func (p *pair) watchDemo(t *testing.T) (string, store.Store) {
	t.Helper()
	p.actor(t, p.beta, "watcher", "watcher", false)
	p.follow(t, p.beta, "watch-demo", "watcher", "acct:demo@"+alphaHost)
	p.phase(t, "beta", "watch-demo", fedv1.PhaseAccepted)
	eventually(t, 30*time.Second, func() error {
		if n := followersCount(t, p, "alpha", "demo"); n != 1 {
			return fmt.Errorf("alpha/demo has %d followers", n)
		}
		return nil
	})
	beta, err := store.Open(context.Background(), p.beta.dsn)
	must(t, err)
	t.Cleanup(func() { _ = beta.Close() })
	return p.beta.base() + "/actors/watcher", beta
}
