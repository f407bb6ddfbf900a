package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// storeTest is one conformance case; it gets a fresh store and the DSN it came from.
type storeTest func(t *testing.T, s Store, dsn string)

// runSuite runs every case against every engine, each on an empty database.
func runSuite(t *testing.T, tests map[string]storeTest) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			for name, tc := range tests {
				t.Run(name, func(t *testing.T) {
					dsn := e.dsn(t)
					tc(t, openTest(t, dsn), dsn)
				})
			}
		})
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func activity(actor string, n int, vis Visibility) Activity {
	id := fmt.Sprintf("%s/activities/%d", actor, n)
	return Activity{
		ID: id, ActorID: actor, Type: "Create", ObjectID: id + "/object", Visibility: vis,
		Published: t0.Add(time.Duration(n) * time.Minute),
		Raw:       json.RawMessage(fmt.Sprintf(`{"id":%q,"type":"Create"}`, id)),
	}
}

func mustAppend(t *testing.T, s Store, a Activity, targets ...DeliveryTarget) {
	t.Helper()
	created, err := s.AppendActivity(context.Background(), a, targets)
	if err != nil || !created {
		t.Fatalf("AppendActivity(%s) = %v, %v; want true, nil", a.ID, created, err)
	}
}

// walkOutbox reads every page and returns the IDs in order.
func walkOutbox(t *testing.T, s Store, q OutboxQuery) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("outbox pagination does not terminate")
		}
		p, err := s.ListOutbox(context.Background(), q)
		if err != nil {
			t.Fatalf("ListOutbox: %v", err)
		}
		for _, a := range p.Items {
			ids = append(ids, a.ID)
		}
		if p.Next == "" {
			return ids
		}
		q.Cursor = p.Next
	}
}

func TestConformance(t *testing.T) {
	ctx := context.Background()
	runSuite(t, map[string]storeTest{
		"activity round trip in UTC and dereferenceable object": func(t *testing.T, s Store, _ string) {
			a := activity("https://h/a", 1, Public)
			a.Published = time.Date(2026, 3, 1, 14, 0, 0, 123456789, time.FixedZone("CET", 3600))
			a.Object = &Object{ID: a.ObjectID, Type: "Note", Raw: json.RawMessage(`{"type":"Note"}`)}
			mustAppend(t, s, a)
			got, err := s.GetActivity(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Published.Location() != time.UTC || !got.Published.Equal(a.Published.Truncate(time.Microsecond)) {
				t.Errorf("Published = %v, want %v in UTC", got.Published, a.Published)
			}
			if got.Type != "Create" || got.Visibility != Public || string(got.Raw) != string(a.Raw) || got.ObjectID != a.ObjectID {
				t.Errorf("GetActivity = %+v", got)
			}
			o, err := s.GetObject(ctx, a.ObjectID)
			if err != nil || o.Type != "Note" || o.ActorID != a.ActorID || o.Visibility != Public || string(o.Raw) != `{"type":"Note"}` {
				t.Errorf("GetObject = %+v, %v", o, err)
			}
			// An Update replaces the object body but keeps its first publication time.
			u := activity("https://h/a", 2, Public)
			u.Type, u.ObjectID = "Update", a.ObjectID
			u.Object = &Object{ID: a.ObjectID, Type: "Note", Raw: json.RawMessage(`{"type":"Note","v":2}`)}
			mustAppend(t, s, u)
			o2, err := s.GetObject(ctx, a.ObjectID)
			if err != nil || string(o2.Raw) != `{"type":"Note","v":2}` || !o2.Published.Equal(o.Published) || !o2.Updated.Equal(u.Published) {
				t.Errorf("after Update GetObject = %+v, %v", o2, err)
			}
			for _, id := range []string{"https://h/missing"} {
				if _, err := s.GetActivity(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("GetActivity(missing) err = %v, want ErrNotFound", err)
				}
				if _, err := s.GetObject(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("GetObject(missing) err = %v, want ErrNotFound", err)
				}
			}
		},
		"append is idempotent and counts are O(1) counters": func(t *testing.T, s Store, _ string) {
			vis := []Visibility{Public, Public, Unlisted, Followers, Direct, Public}
			for i, v := range vis {
				mustAppend(t, s, activity("https://h/a", i, v))
			}
			mustAppend(t, s, activity("https://h/b", 0, Public))
			created, err := s.AppendActivity(ctx, activity("https://h/a", 0, Public), []DeliveryTarget{{Inbox: "https://p/inbox", Host: "p"}})
			if err != nil || created {
				t.Fatalf("replayed AppendActivity = %v, %v; want false, nil", created, err)
			}
			if st, _ := s.QueueStats(ctx, t0); st.Pending != 0 {
				t.Errorf("replayed append enqueued %d deliveries", st.Pending)
			}
			counts := map[string]struct {
				vis  []Visibility
				want int64
			}{
				"default is public and unlisted": {nil, 4},
				"public":                         {[]Visibility{Public}, 3},
				"everything":                     {[]Visibility{Public, Unlisted, Followers, Direct}, 6},
			}
			for name, c := range counts {
				if n, err := s.CountOutbox(ctx, "https://h/a", c.vis...); err != nil || n != c.want {
					t.Errorf("%s: CountOutbox = %d, %v; want %d", name, n, err, c.want)
				}
			}
			if n, err := s.CountOutbox(ctx, "https://h/nobody"); err != nil || n != 0 {
				t.Errorf("CountOutbox(unknown) = %d, %v", n, err)
			}
		},
		"outbox keyset pages walk newest first without gaps": func(t *testing.T, s Store, _ string) {
			var want []string
			for i := 0; i < 53; i++ {
				a := activity("https://h/a", i, Public)
				if i%5 == 0 {
					a.Published = t0 // ties on published are broken by insertion order
				}
				if i%7 == 0 {
					a.Visibility = Followers
				}
				mustAppend(t, s, a)
				mustAppend(t, s, activity("https://h/other", i, Public))
			}
			all, err := s.ListOutbox(ctx, OutboxQuery{ActorID: "https://h/a", Limit: 500,
				Visibilities: []Visibility{Public, Unlisted, Followers, Direct}})
			if err != nil || len(all.Items) != 53 || all.Next != "" {
				t.Fatalf("one big page: %d items, next %q, %v", len(all.Items), all.Next, err)
			}
			for i := 1; i < len(all.Items); i++ {
				if all.Items[i].Published.After(all.Items[i-1].Published) {
					t.Fatalf("not newest first at %d", i)
				}
			}
			for _, a := range all.Items {
				if a.Visibility != Followers {
					want = append(want, a.ID)
				}
			}
			for _, limit := range []int{1, 7, 10, 45, 46} {
				got := walkOutbox(t, s, OutboxQuery{ActorID: "https://h/a", Limit: limit})
				if !slices.Equal(got, want) {
					t.Errorf("limit %d: walked %d ids, want %d in the same order", limit, len(got), len(want))
				}
			}
			if _, err := s.ListOutbox(ctx, OutboxQuery{ActorID: "https://h/a", Cursor: "not a cursor!"}); !errors.Is(err, ErrBadCursor) {
				t.Errorf("bad cursor err = %v, want ErrBadCursor", err)
			}
			if p, err := s.ListOutbox(ctx, OutboxQuery{ActorID: "https://h/none"}); err != nil || len(p.Items) != 0 || p.Next != "" {
				t.Errorf("empty outbox = %+v, %v", p, err)
			}
		},
		"invalid activities are refused": func(t *testing.T, s Store, _ string) {
			bad := map[string]func(*Activity){
				"no id":       func(a *Activity) { a.ID = "" },
				"no actor":    func(a *Activity) { a.ActorID = "" },
				"visibility":  func(a *Activity) { a.Visibility = "secret" },
				"no body":     func(a *Activity) { a.Raw = nil },
				"no time":     func(a *Activity) { a.Published = time.Time{} },
				"bad object":  func(a *Activity) { a.Object = &Object{ID: "x"} },
				"bad targets": func(a *Activity) {},
			}
			for name, mutate := range bad {
				a := activity("https://h/a", 1, Public)
				mutate(&a)
				var targets []DeliveryTarget
				if name == "bad targets" {
					targets = []DeliveryTarget{{Inbox: "https://p/inbox"}}
				}
				if _, err := s.AppendActivity(ctx, a, targets); err == nil {
					t.Errorf("%s: AppendActivity accepted it", name)
				}
			}
			// Nothing half-written: the failed transaction left no activity behind.
			if _, err := s.GetActivity(ctx, "https://h/a/activities/1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("failed append left a row: %v", err)
			}
			if n, _ := s.CountOutbox(ctx, "https://h/a"); n != 0 {
				t.Errorf("failed append left count %d", n)
			}
		},
		"received dedupe and per-recipient keyset pages": func(t *testing.T, s Store, _ string) {
			for i := 0; i < 25; i++ {
				r := Received{ID: fmt.Sprintf("https://p/act/%d", i), ActorID: "https://p/u", Type: "Create",
					ReceivedAt: t0.Add(time.Duration(i) * time.Second), Raw: json.RawMessage(`{}`)}
				recipients := []string{"https://h/a"}
				if i%2 == 0 {
					recipients = append(recipients, "https://h/b")
				}
				isNew, err := s.RecordReceived(ctx, r, recipients)
				if err != nil || !isNew {
					t.Fatalf("RecordReceived #%d = %v, %v", i, isNew, err)
				}
			}
			replay := Received{ID: "https://p/act/3", ActorID: "https://p/u", Type: "Create", Raw: json.RawMessage(`{"x":1}`)}
			isNew, err := s.RecordReceived(ctx, replay, []string{"https://h/c"})
			if err != nil || isNew {
				t.Fatalf("replay RecordReceived = %v, %v; want false", isNew, err)
			}
			got, err := s.GetReceived(ctx, "https://p/act/3")
			if err != nil || string(got.Raw) != `{}` || !got.ReceivedAt.Equal(t0.Add(3*time.Second)) {
				t.Errorf("replay overwrote the first copy: %+v, %v", got, err)
			}
			walk := func(actor string, limit int) []string {
				var ids []string
				cursor := ""
				for {
					p, err := s.ListReceived(ctx, actor, cursor, limit)
					if err != nil {
						t.Fatalf("ListReceived: %v", err)
					}
					for _, r := range p.Items {
						ids = append(ids, r.ID)
					}
					if p.Next == "" {
						return ids
					}
					cursor = p.Next
				}
			}
			a := walk("https://h/a", 4)
			if len(a) != 25 || a[0] != "https://p/act/24" || a[24] != "https://p/act/0" {
				t.Errorf("actor a received %v", a)
			}
			if b := walk("https://h/b", 5); len(b) != 13 {
				t.Errorf("actor b received %d, want 13", len(b))
			}
			if c := walk("https://h/c", 5); !slices.Equal(c, []string{"https://p/act/3"}) {
				t.Errorf("actor c received %v", c)
			}
			if _, err := s.GetReceived(ctx, "https://p/none"); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetReceived(missing) = %v", err)
			}
		},
		"remote actor cache with keys, negative entries and delete": func(t *testing.T, s Store, _ string) {
			a := RemoteActor{ID: "https://p/u", Inbox: "https://p/u/inbox", SharedInbox: "https://p/inbox",
				Keys:      []PublicKey{{ID: "https://p/u#main-key", PEM: "PEM1"}, {ID: "https://p/u#ed", PEM: "PEM2"}},
				Raw:       json.RawMessage(`{"id":"https://p/u"}`),
				FetchedAt: t0, ExpiresAt: t0.Add(time.Hour)}
			if err := s.PutRemoteActor(ctx, a); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetRemoteActor(ctx, a.ID)
			if err != nil || got.Inbox != a.Inbox || got.SharedInbox != a.SharedInbox || len(got.Keys) != 2 ||
				!got.ExpiresAt.Equal(a.ExpiresAt) || got.Negative || string(got.Raw) != string(a.Raw) {
				t.Fatalf("GetRemoteActor = %+v, %v", got, err)
			}
			k, exp, err := s.GetRemoteKey(ctx, "https://p/u#main-key")
			if err != nil || k.OwnerID != a.ID || k.PEM != "PEM1" || !exp.Equal(a.ExpiresAt) {
				t.Errorf("GetRemoteKey = %+v, %v, %v", k, exp, err)
			}
			// Key rotation: the new document replaces the key set.
			a.Keys = []PublicKey{{ID: "https://p/u#key2", PEM: "PEM3"}}
			if err := s.PutRemoteActor(ctx, a); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.GetRemoteKey(ctx, "https://p/u#main-key"); !errors.Is(err, ErrNotFound) {
				t.Errorf("rotated key still cached: %v", err)
			}
			neg := RemoteActor{ID: "https://bad/u", Negative: true, Error: "410 Gone", FetchedAt: t0, ExpiresAt: t0.Add(time.Minute)}
			if err := s.PutRemoteActor(ctx, neg); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetRemoteActor(ctx, neg.ID); err != nil || !got.Negative || got.Error != "410 Gone" || len(got.Keys) != 0 {
				t.Errorf("negative entry = %+v, %v", got, err)
			}
			if err := s.DeleteRemoteActor(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetRemoteActor(ctx, a.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("deleted actor: %v", err)
			}
			if _, _, err := s.GetRemoteKey(ctx, "https://p/u#key2"); !errors.Is(err, ErrNotFound) {
				t.Errorf("deleted actor's key: %v", err)
			}
		},
		"feed entry dedupe and validators survive a reopen": func(t *testing.T, s Store, dsn string) {
			fresh, err := s.MarkFeedEntriesSeen(ctx, "ns/actor/rel", []string{"e1", "e2"}, t0)
			if err != nil || !slices.Equal(fresh, []string{"e1", "e2"}) {
				t.Fatalf("MarkFeedEntriesSeen = %v, %v", fresh, err)
			}
			if err := s.PutFeedState(ctx, FeedState{SourceID: "ns/actor/rel", ETag: `"abc"`, LastModified: "Sun, 01 Mar 2026 12:00:00 GMT", PolledAt: t0}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openTest(t, dsn)
			unseen, err := s.FilterUnseenFeedEntries(ctx, "ns/actor/rel", []string{"e0", "e1", "e2", "e3", "e3"})
			if err != nil || !slices.Equal(unseen, []string{"e0", "e3"}) {
				t.Errorf("FilterUnseenFeedEntries = %v, %v", unseen, err)
			}
			fresh, err = s.MarkFeedEntriesSeen(ctx, "ns/actor/rel", []string{"e2", "e3"}, t0)
			if err != nil || !slices.Equal(fresh, []string{"e3"}) {
				t.Errorf("second MarkFeedEntriesSeen = %v, %v", fresh, err)
			}
			if other, _ := s.FilterUnseenFeedEntries(ctx, "ns/other", []string{"e1"}); len(other) != 1 {
				t.Errorf("dedupe leaked across sources: %v", other)
			}
			st, err := s.GetFeedState(ctx, "ns/actor/rel")
			if err != nil || st.ETag != `"abc"` || st.LastModified == "" || !st.PolledAt.Equal(t0) {
				t.Errorf("GetFeedState = %+v, %v", st, err)
			}
			if st, err := s.GetFeedState(ctx, "ns/never"); err != nil || st.ETag != "" {
				t.Errorf("GetFeedState(never) = %+v, %v", st, err)
			}
		},
		"migrations are recorded once and concurrent opens agree": func(t *testing.T, s Store, dsn string) {
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s2, err := Open(ctx, dsn)
					if err == nil {
						err = s2.Close()
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("concurrent Open: %v", err)
				}
			}
			ss := s.(*sqlStore)
			steps, _ := ss.migrations()
			var n int
			if err := ss.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(steps) {
				t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, len(steps))
			}
		},
	})
}

func TestOpenDSNForms(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]string{
		"sqlite URL":      "sqlite://" + filepath.Join(dir, "a.db"),
		"plain path":      filepath.Join(dir, "sub", "b.db"),
		"with parameters": "sqlite://" + filepath.Join(dir, "c.db") + "?_pragma=cache_size(-4000)",
	}
	for name, dsn := range tests {
		t.Run(name, func(t *testing.T) {
			s := openTest(t, dsn)
			mustAppend(t, s, activity("https://h/a", 1, Public))
		})
	}
	if _, err := Open(context.Background(), ""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
}
