package app

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// upstreamPeer plays instance A of issue 14 in Go, on its own loopback address: a
// Repository actor "project" (R_A) that serves its document with its key, signs what
// the test sends as it, and a verifyingInbox that keeps each verified activity with the
// time it arrived.
type upstreamPeer struct {
	verifyingInbox // its mu also guards cloneURI
	base           string
	key            *rsa.PrivateKey
	pem            string
	cloneURI       string // the cloneUri R_A's document shows
}

// peerDelivery is one verified activity and when it arrived.
type peerDelivery struct {
	doc map[string]any
	at  time.Time
}

func startUpstreamPeer(t *testing.T) *upstreamPeer {
	t.Helper()
	key, pem := peerKey(t)
	ln, err := net.Listen("tcp", "127.0.0.7:0")
	must(t, err)
	up := &upstreamPeer{base: "http://" + ln.Addr().String(), key: key, pem: pem}
	up.origin = up.base
	up.cloneURI = up.base + "/git/bob/project.git"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /actors/project", func(w http.ResponseWriter, r *http.Request) {
		id := up.id()
		up.mu.Lock()
		clone := up.cloneURI
		up.mu.Unlock()
		w.Header().Set("Content-Type", "application/activity+json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"@context": []string{activitypub.ActivityStreamsContext, activitypub.SecurityContext, activitypub.ForgeFedContext},
			"id":       id, "type": "Repository", "preferredUsername": "project", "name": "Bob's project",
			"inbox": id + "/inbox", "cloneUri": clone,
			"publicKey": map[string]string{"id": id + "#main-key", "owner": id, "publicKeyPem": up.pem},
		})
	})
	mux.HandleFunc("POST /actors/project/inbox", up.serveInbox)
	servePeer(t, ln, mux)
	return up
}

func (up *upstreamPeer) id() string { return up.base + "/actors/project" }

// received returns the verified activities that match, in arrival order.
func (up *upstreamPeer) received(match func(map[string]any) bool) []peerDelivery {
	up.mu.Lock()
	defer up.mu.Unlock()
	var out []peerDelivery
	for i, d := range up.got {
		if match(d) {
			out = append(out, peerDelivery{doc: d, at: up.at[i]})
		}
	}
	return out
}

// wait waits for a verified activity that matches and returns the first.
func (up *upstreamPeer) wait(t *testing.T, what string, match func(map[string]any) bool) peerDelivery {
	t.Helper()
	var got peerDelivery
	eventually(t, 90*time.Second, func() error {
		if ds := up.received(match); len(ds) > 0 {
			got = ds[0]
			return nil
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		return fmt.Errorf("the upstream peer has not received %s (%d verified, refused: %v)", what, len(up.got), up.unverified)
	})
	return got
}

// send signs act as R_A and posts it to alpha's shared inbox.
func (up *upstreamPeer) send(t *testing.T, p *pair, act map[string]any) (int, string) {
	t.Helper()
	return sendSigned(t, p, up.key, up.id()+"#main-key", act)
}

// obj returns a field of a document that is one object (or a list of one), or nil.
func obj(d map[string]any, key string) map[string]any {
	v := d[key]
	if l, ok := v.([]any); ok && len(l) == 1 {
		v = l[0]
	}
	m, _ := v.(map[string]any)
	return m
}
