package gitsync

import (
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/testr"

	"github.com/fedforge/fedforge/internal/forge/giteatest"
	"github.com/fedforge/fedforge/internal/netguard"
)

// forges is Bob's project on Gitea A and Alice's fork-by-push of it on Gitea B, both real
// instances on loopback, with a local clone of Alice's to commit from.
type forges struct {
	a, b       *giteatest.Instance
	owner      string // Bob: the owner of the project on A
	alice      string // the owner of the fork on B
	aURL, bURL string // clone URLs; bURL goes through the recorder in front of B
	alicesDir  string
	recorder   *recorder
	tmp        string // Config.TempDir of the Syncers under test
}

const project = "project"

// loopback is a guard that may reach 127.0.0.0/8 over plain http, as a local install's.
func loopback() *netguard.Guard {
	return netguard.New(netguard.Config{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
}

func startForges(t testing.TB) *forges {
	t.Helper()
	f := &forges{a: giteatest.Start(t), b: giteatest.Start(t), tmp: t.TempDir()}
	f.owner, f.alice = f.a.AdminUser, f.b.AdminUser
	f.aURL = f.a.CreateRepo(t, project).CloneURL
	bRepo := f.b.CreateRepo(t, project)

	// Bob's first commit on A; Alice forks by pushing a clone to B.
	f.alicesDir = t.TempDir()
	f.git(t, "", "init", "--quiet")
	first := f.commit(t, "README.md", "line one\n", "First commit")
	f.git(t, f.a.Token, "push", "--quiet", f.aURL, "main")
	f.a.WaitPushed(t, f.owner, project, "main", first)
	f.gitB(t, "push", "--quiet", bRepo.CloneURL, "main")
	f.b.WaitPushed(t, f.alice, project, "main", first)

	f.recorder = startRecorder(t, f.b.URL)
	f.bURL = f.recorder.url + "/" + f.alice + "/" + project + ".git"
	return f
}

// git runs git in Alice's clone, authenticated to one forge with token ("" for none).
func (f *forges) git(t testing.TB, token string, args ...string) string {
	t.Helper()
	user := f.alice
	if token == f.a.Token && token != "" {
		user = f.owner
	}
	return giteatest.Git(t, f.alicesDir, user, token, args...)
}

func (f *forges) gitB(t testing.TB, args ...string) string {
	t.Helper()
	return giteatest.Git(t, f.alicesDir, f.alice, f.b.Token, args...)
}

// commit writes file and commits it on the current branch; it returns the new head.
func (f *forges) commit(t testing.TB, file, content, msg string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.alicesDir, file), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f.git(t, "", "add", file)
	f.git(t, "", "commit", "--quiet", "-m", msg)
	return f.git(t, "", "rev-parse", "HEAD")
}

// pushB pushes the current HEAD to branch on B (forced when force) and waits for it.
func (f *forges) pushB(t testing.TB, branch string, force bool) string {
	t.Helper()
	head := f.git(t, "", "rev-parse", "HEAD")
	args := []string{"push", "--quiet"}
	if force {
		args = append(args, "--force")
	}
	f.gitB(t, append(args, f.b.URL+"/"+f.alice+"/"+project+".git", "HEAD:refs/heads/"+branch)...)
	f.b.WaitPushed(t, f.alice, project, branch, head)
	return head
}

// syncer is a Syncer whose source and target guards both allow loopback, unless cfg says
// otherwise.
func (f *forges) syncer(t testing.TB, cfg Config) *Syncer {
	t.Helper()
	if cfg.Source == nil {
		cfg.Source = loopback()
	}
	if cfg.Target == nil {
		cfg.Target = loopback()
	}
	cfg.TempDir = f.tmp
	if tt, ok := t.(*testing.T); ok {
		cfg.Log = testr.NewWithOptions(tt, testr.Options{Verbosity: 1})
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request mirrors branch of Alice's fork into Bob's project.
func (f *forges) request(branch string) Request {
	return Request{
		Source: Source{CloneURL: f.bURL, Branch: branch, Host: "forge-b.example", User: f.alice},
		Target: Target{CloneURL: f.aURL, Username: f.owner, Token: f.a.Token, BaseBranch: "main"},
	}
}

// headOnA is the federated branch's head on A through git ls-remote ("" when absent).
func (f *forges) headOnA(t testing.TB, branch string) string {
	t.Helper()
	out := giteatest.Git(t, f.alicesDir, f.owner, f.a.Token, "ls-remote", f.aURL, "refs/heads/"+branch)
	hash, _, _ := strings.Cut(out, "\t")
	return hash
}

// noWorkDirsLeft fails when a Mirror left its work directory behind.
func (f *forges) noWorkDirsLeft(t testing.TB) {
	t.Helper()
	entries, err := os.ReadDir(f.tmp)
	if err != nil || len(entries) != 0 {
		t.Errorf("work directories left in %s: %v %v", f.tmp, entries, err)
	}
}

// recorder is a reverse proxy in front of Gitea B that records every request's headers,
// to show what the source forge received.
type recorder struct {
	url     string
	mu      sync.Mutex
	headers []http.Header
}

func startRecorder(t testing.TB, target string) *recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	rp := httputil.NewSingleHostReverseProxy(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.headers = append(rec.headers, r.Header.Clone())
		rec.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	rec.url = "http://" + ln.Addr().String()
	return rec
}

func (r *recorder) seen() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

// silentListener accepts connections and never answers: a remote that hangs. It counts
// the connections it accepted.
type silentListener struct {
	addr     string
	mu       sync.Mutex
	accepted int
}

func startSilent(t testing.TB) *silentListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentListener{addr: ln.Addr().String()}
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			conns = append(conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return s
}

func (s *silentListener) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// randomText is n bytes that do not compress (hex of random bytes).
func randomText(t testing.TB, n int) string {
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, n)
	for _, c := range b {
		out = append(out, hexdigits[c>>4], hexdigits[c&15])
	}
	return string(out)
}
