package delivery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

const testToken = "s3cret-token-for-tests"

// serveQueue serves s's queue on a loopback server, as the server's internal listener does.
func serveQueue(t testing.TB, q Queue, token string) string {
	mux := http.NewServeMux()
	mux.Handle(QueuePath+"/", http.StripPrefix(QueuePath, QueueHandler(q, token)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + QueuePath
}

func TestQueueHandlerAuth(t *testing.T) {
	s, _ := newStore(t)
	tests := map[string]struct {
		serverToken string
		header      string
		want        int
	}{
		"no header":          {testToken, "", http.StatusUnauthorized},
		"wrong token":        {testToken, "Bearer nope", http.StatusUnauthorized},
		"token as basic":     {testToken, "Basic " + testToken, http.StatusUnauthorized},
		"token prefix":       {testToken, "Bearer " + testToken[:5], http.StatusUnauthorized},
		"empty server token": {"", "Bearer ", http.StatusUnauthorized},
		"right token":        {testToken, "Bearer " + testToken, http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			base := serveQueue(t, s, tc.serverToken)
			req, _ := http.NewRequest(http.MethodGet, base+routeUnavailable, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if _, err := NewRemoteQueue("http://x.test", "", nil); err == nil {
		t.Fatal("a RemoteQueue without a token was made")
	}
	q, _ := NewRemoteQueue(serveQueue(t, s, testToken), "wrong", nil)
	if _, err := q.ListUnavailableHosts(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v, want a 401 error", err)
	}
}

func TestRemoteQueueSemantics(t *testing.T) {
	s, _ := newStore(t)
	c := newClock()
	q, err := NewRemoteQueue(serveQueue(t, s, testToken), testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := newActivity("remote-sem", c.Now())
	if _, err := s.AppendActivity(ctx, a, []store.DeliveryTarget{{Inbox: "http://x.test/inbox", Host: "x.test"}, {Inbox: "http://y.test/inbox", Host: "y.test"}}); err != nil {
		t.Fatal(err)
	}
	rows, err := q.LeaseDeliveries(ctx, store.LeaseRequest{Now: c.Now(), Limit: 10, Lease: time.Minute, Owner: "job-1"})
	if err != nil || len(rows) != 2 {
		t.Fatalf("lease = %+v, %v", rows, err)
	}
	if again, err := s.LeaseDeliveries(ctx, store.LeaseRequest{Now: c.Now(), Limit: 10, Lease: time.Minute, Owner: "server"}); err != nil || len(again) != 0 {
		t.Fatalf("rows leased over HTTP were leased again: %+v, %v", again, err)
	}
	got, err := q.GetActivity(ctx, a.ID)
	if err != nil || got.ID != a.ID || string(got.Raw) != string(a.Raw) || !got.Published.Equal(a.Published) {
		t.Fatalf("GetActivity = %+v, %v", got, err)
	}
	if _, err := q.GetActivity(ctx, a.ID+"-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetActivity(missing) = %v, want store.ErrNotFound", err)
	}
	if err := q.MarkFailed(ctx, rows[0].ID, "someone-else", c.Now(), "x"); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("MarkFailed by a non-owner = %v, want store.ErrLeaseLost", err)
	}
	if err := q.MarkDelivered(ctx, rows[0].ID, c.Now()); err != nil {
		t.Fatal(err)
	}
	if err := q.GiveUp(ctx, rows[1].ID, "job-1", c.Now(), "gone"); err != nil {
		t.Fatal(err)
	}
	st, err := q.RecordHostFailure(ctx, "y.test", c.Now(), 1)
	if err != nil || !st.Unavailable || st.ConsecutiveFailures != 1 {
		t.Fatalf("RecordHostFailure = %+v, %v", st, err)
	}
	if hs, err := q.ListUnavailableHosts(ctx); err != nil || len(hs) != 1 || hs[0].Host != "y.test" {
		t.Fatalf("ListUnavailableHosts = %+v, %v", hs, err)
	}
	if err := q.RecordHostSuccess(ctx, "y.test", c.Now()); err != nil {
		t.Fatal(err)
	}
	if qs := queueStats(t, s, c.Now()); qs.Delivered != 1 || qs.Dead != 1 || qs.Pending != 0 {
		t.Fatalf("queue after remote reports: %+v", qs)
	}
}

func TestExecutorOverRemoteQueue(t *testing.T) {
	f := newFediverse(t, 5, "remote.test", nil)
	s, _ := newStore(t)
	c := newClock()
	q, err := NewRemoteQueue(serveQueue(t, s, testToken), testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newExecutor(t, q, f, c)
	f.peers[4].setMode(t, mode5xx)
	to := f.followers(25, true)
	a := newActivity("remote", c.Now())
	if err := NewPublisher(s, nil).Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	if n, err := e.RunOnce(context.Background()); err != nil || n != 5 {
		t.Fatalf("RunOnce over the remote queue = %d, %v; want 5 rows", n, err)
	}
	if st, _ := s.GetHostState(context.Background(), f.host(4)); st.ConsecutiveFailures != 1 {
		t.Fatalf("host failure not recorded through the remote queue: %+v", st)
	}
	f.peers[4].setMode(t, modeOK)
	drain(t, e, s, c, time.Minute, 20)
	f.checkTargets(t, []string{a.ID}, to, true)
}

func TestRunJob(t *testing.T) {
	f := newFediverse(t, 3, "job.test", nil)
	s, _ := newStore(t)
	c := newClock()
	keysDir := filepath.Join(t.TempDir(), "keys")
	writeKeyDir(t, filepath.Join(keysDir, "releases"))
	opts := JobOptions{
		QueueURL: serveQueue(t, s, testToken), Token: testToken, KeysDir: keysDir,
		Actors: []JobActor{{ID: testActorID, Dir: "releases"}}, Client: f.clientConfig(),
		MaxDuration: time.Minute, Now: c.Now,
	}
	res, err := RunJob(context.Background(), opts)
	if err != nil || res.Leased != 0 || res.Rounds != 1 {
		t.Fatalf("RunJob with nothing due = %+v, %v; want a quick clean exit", res, err)
	}
	to := f.followers(9, false)
	a := newActivity("job", c.Now())
	if err := NewPublisher(s, nil).Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	res, err = RunJob(context.Background(), opts)
	if err != nil || res.Delivered != 9 {
		t.Fatalf("RunJob = %+v, %v; want 9 delivered", res, err)
	}
	f.checkTargets(t, []string{a.ID}, to, true)

	bad := map[string]func(o *JobOptions){
		"sqlite store":        func(o *JobOptions) { o.QueueURL, o.StoreDSN = "", "sqlite:///var/lib/fedforge/fedforge.db" },
		"both queue and dsn":  func(o *JobOptions) { o.StoreDSN = "postgres://x" },
		"neither":             func(o *JobOptions) { o.QueueURL = "" },
		"missing key":         func(o *JobOptions) { o.Actors = []JobActor{{ID: testActorID, Dir: "nobody"}} },
		"no token":            func(o *JobOptions) { o.Token = "" },
		"queue URL not http":  func(o *JobOptions) { o.QueueURL = "file:///etc/passwd" },
		"actor without an ID": func(o *JobOptions) { o.Actors = []JobActor{{Dir: "releases"}} },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			o := opts
			mutate(&o)
			if _, err := RunJob(context.Background(), o); err == nil {
				t.Fatal("RunJob accepted bad options")
			}
		})
	}
}
