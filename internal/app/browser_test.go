package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fedforge/fedforge/internal/server"
)

// chromium returns Debian's Chromium, installed by hack/chromium.sh when missing.
func chromium(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(filepath.Join("..", "..", "hack", "chromium.sh")).Output()
	if err != nil {
		t.Fatalf("hack/chromium.sh: %v (the browser test needs Debian's chromium package)", err)
	}
	return strings.TrimSpace(string(out))
}

// remotePeer is a Fediverse instance on loopback that serves WebFinger with a
// subscribe template (alice) or without one (bob), and the page the template names.
type remotePeer struct {
	base string
	mu   sync.Mutex
	uris []string // the uri parameters authorize_interaction was asked for
	hits int      // WebFinger requests
}

func startRemotePeer(t *testing.T) (*remotePeer, string) {
	ln, err := net.Listen("tcp", "127.0.0.9:0")
	must(t, err)
	p := &remotePeer{base: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/webfinger", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hits++
		p.mu.Unlock()
		res := r.URL.Query().Get("resource")
		links := []map[string]string{{"rel": "self", "type": "application/activity+json", "href": "http://peer.test/users/x"}}
		switch res {
		case "acct:alice@peer.test":
			links = append(links, map[string]string{"rel": server.SubscribeRel, "template": p.base + "/authorize_interaction?uri={uri}"})
		case "acct:bob@peer.test":
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jrd+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"subject": res, "links": links})
	})
	mux.HandleFunc("GET /authorize_interaction", func(w http.ResponseWriter, r *http.Request) {
		uri := r.URL.Query().Get("uri")
		p.mu.Lock()
		p.uris = append(p.uris, uri)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><title>Follow?</title><h1 id="confirm">Follow %s from peer.test?</h1>`, strings.NewReplacer("<", "&lt;", "&", "&amp;").Replace(uri))
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p, ln.Addr().String()
}

// TestProfileFollowInBrowser opens an actor's profile page in a real headless Chromium,
// takes a screenshot, types a handle into "follow from your instance", and follows the
// redirect to the visitor's instance (a loopback peer that serves the subscribe
// template); a handle whose instance has no template gets the page with the handle to
// paste. Then, over plain HTTP: the JRD carries our own template, a handle on a private
// address is refused by the outbound guard, and lookups are rate limited.
func TestProfileFollowInBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	peer, peerAddr := startRemotePeer(t)
	p := newPair(t, "peer.test="+peerAddr)
	p.actor(t, p.alpha, "releases", "releases", false)
	actorID := p.alpha.base() + "/actors/releases"
	profile := "http://" + p.alpha.listen + "/actors/releases"

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1000, 700))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	bctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	must(t, chromedp.Do(bctx, chromedp.Navigate(profile), chromedp.WaitVisible("#handle")))
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	must(t, err)
	must(t, chromedp.Do(bctx,
		chromedp.SendKeys("#handle", "alice@peer.test"),
		chromedp.Click("#follow"),
		chromedp.WaitVisible("#confirm"),
	))
	location, err := chromedp.Run(bctx, chromedp.Location())
	must(t, err)
	confirm, err := chromedp.Run(bctx, chromedp.Text("#confirm"))
	must(t, err)
	dir := os.Getenv("FEDFORGE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	must(t, os.MkdirAll(dir, 0o755))
	shotPath := filepath.Join(dir, "profile-follow.png")
	must(t, os.WriteFile(shotPath, shot, 0o644))
	if len(shot) < 1000 || string(shot[1:4]) != "PNG" {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(shot))
	}
	t.Logf("screenshot of the profile page: %s (%d bytes)", shotPath, len(shot))
	want := peer.base + "/authorize_interaction?uri=" + url.QueryEscape(actorID)
	if location != want {
		t.Errorf("the browser ended at %s, want %s", location, want)
	}
	if !strings.Contains(confirm, actorID) {
		t.Errorf("the peer's page says %q, want the actor's id %s", confirm, actorID)
	}
	peer.mu.Lock()
	uris := append([]string(nil), peer.uris...)
	peer.mu.Unlock()
	if len(uris) != 1 || uris[0] != actorID {
		t.Errorf("the peer was asked to follow %q, want [%s]", uris, actorID)
	}

	// An instance without a subscribe template: the page with the handle to paste.
	must(t, chromedp.Do(bctx,
		chromedp.Navigate(profile),
		chromedp.WaitVisible("#handle"),
		chromedp.SendKeys("#handle", "@bob@peer.test"),
		chromedp.Click("#follow"),
		chromedp.WaitVisible("#handle-to-paste"),
	))
	pasted, err := chromedp.Run(bctx, chromedp.Value("#handle-to-paste"))
	must(t, err)
	problem, err := chromedp.Run(bctx, chromedp.Text("#problem"))
	must(t, err)
	if pasted != "@releases@"+alphaHost {
		t.Errorf("the fallback shows %q to paste, want @releases@%s", pasted, alphaHost)
	}
	if !strings.Contains(problem, "peer.test") || !strings.Contains(problem, "no subscribe template") {
		t.Errorf("the fallback says %q", problem)
	}

	// Our JRD carries our own template, which leads to a page that says how to follow.
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.alpha.listen+"/.well-known/webfinger?resource=acct:releases@"+alphaHost, nil)
	req.Host = alphaHost
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ours := `"template":"` + p.alpha.base() + `/authorize_interaction?uri={uri}"`
	if !strings.Contains(string(body), `"rel":"`+server.SubscribeRel+`"`) || !strings.Contains(string(body), ours) {
		t.Errorf("our JRD lacks the subscribe template %s: %s", ours, body)
	}
	resp, err = http.Get("http://" + p.alpha.listen + "/authorize_interaction?uri=" + url.QueryEscape("https://mastodon.example/users/carol"))
	must(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "remoteActor: https://mastodon.example/users/carol") {
		t.Errorf("authorize_interaction: %d %s", resp.StatusCode, body)
	}

	// The lookup goes through the outbound guard (10.0.0.0/8 is not allowed here), and
	// one address gets a few lookups a minute.
	follow := func(handle string) (int, string) {
		resp, err := http.PostForm(profile+"/follow", url.Values{"handle": {handle}})
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := follow("mallory@10.0.0.1"); code != http.StatusBadGateway || !strings.Contains(body, "handle-to-paste") {
		t.Errorf("a handle on a private address: %d %.300s, want 502 and the fallback", code, body)
	}
	if code, _ := follow("not a handle"); code != http.StatusBadRequest {
		t.Errorf("a malformed handle: %d, want 400", code)
	}
	peer.mu.Lock()
	before := peer.hits
	peer.mu.Unlock()
	limited := false
	for range 10 {
		if code, _ := follow("bob@peer.test"); code == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	peer.mu.Lock()
	after := peer.hits
	peer.mu.Unlock()
	if !limited || after-before > 3 {
		t.Errorf("10 lookups from one address: limited %v, %d reached the peer; want a 429 and at most 3", limited, after-before)
	}
}
