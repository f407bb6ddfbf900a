package server

import (
	"context"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/store"
)

// TestPublishWithDeliveryJobs: a server without an in-process executor (deliveries left
// to Jobs, spec.delivery.inProcess false) publishes to followers: the activity and its
// deliveries are stored, due for a Job, and nothing is kicked. Its publisher used to hold
// a nil *Executor as a non-nil Kicker and panicked on Kick after the store's commit;
// the webhook queue's worker died with its row leased, and the source's next events
// waited for the lease to end.
func TestPublishWithDeliveryJobs(t *testing.T) {
	fx := newFixture(t)
	if fx.srv.exec != nil {
		t.Fatal("the fixture's server has an in-process executor; this test needs one without")
	}
	a := store.Activity{
		ID: testBase + "/actors/releases/activities/jobs-1", ActorID: testBase + "/actors/releases", Type: "Create",
		Visibility: store.Public, Published: time.Now(), Raw: []byte(`{"type":"Create"}`),
	}
	err := fx.srv.fed.pub.Publish(context.Background(), a, []delivery.Recipient{
		{Inbox: "https://peer.example/users/bob/inbox", SharedInbox: "https://peer.example/inbox"},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := fx.srv.opts.Store.QueueStats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Due != 1 {
		t.Errorf("due deliveries after publishing to one shared inbox = %d, want 1 (for a delivery Job)", st.Due)
	}
}
