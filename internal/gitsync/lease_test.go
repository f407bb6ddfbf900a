package gitsync

import (
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// testConcurrentPush: Bob pushes to the federated branch on forge A while a Mirror is
// under way (between the Mirror's first read and its push). A front in front of forge A
// makes that happen deterministically: when git asks for the refs to push to, the front
// first pushes Bob's commit. The lease must refuse the push (ErrDiverged) and keep Bob's
// commit, although Alice's update alone would be a fast-forward.
func testConcurrentPush(t *testing.T, f *forges) {
	s := f.syncer(t, Config{})
	f.git(t, "", "checkout", "--quiet", "-b", "racy", "main")
	first := f.commit(t, "racy.txt", "one\n", "Racy one")
	f.pushB(t, "racy", false)
	res, err := s.Mirror(t.Context(), f.request("racy"))
	if err != nil || res.NewHead != first {
		t.Fatalf("first mirror: %+v, %v", res, err)
	}
	fed := res.Branch

	// Bob's commit on top of the mirrored head, pushed by the front at the right moment.
	f.git(t, "", "checkout", "--quiet", "-b", "bobs-racy", first)
	bobs := f.commit(t, "bob-racy.txt", "bob\n", "Bob, concurrently")
	f.git(t, "", "checkout", "--quiet", "racy")
	f.commit(t, "racy.txt", "one\ntwo\n", "Racy two")
	f.pushB(t, "racy", false)

	u, err := url.Parse(f.a.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	var once sync.Once
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("service") == "git-receive-pack" {
			once.Do(func() {
				f.git(t, f.a.Token, "push", "--quiet", f.aURL, bobs+":refs/heads/"+fed)
			})
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = front.Serve(ln) }()
	t.Cleanup(func() { front.Close() })

	req := f.request("racy")
	req.Target.CloneURL = "http://" + ln.Addr().String() + "/" + f.owner + "/" + project + ".git"
	res, err = s.Mirror(t.Context(), req)
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("push over a concurrent change: %+v, %v; want ErrDiverged", res, err)
	}
	if got := f.headOnA(t, fed); got != bobs {
		t.Fatalf("%s on A = %s, want Bob's concurrent %s kept", fed, got, bobs)
	}
}
