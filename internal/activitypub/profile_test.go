package activitypub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// memProfiles is a ProfileStore in a map (the store's SQL version has its own
// conformance tests in internal/store).
type memProfiles struct {
	mu sync.Mutex
	m  map[string]HostProfile
}

func (s *memProfiles) LoadSignatureProfile(_ context.Context, host string) (HostProfile, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[host]
	return p, ok, nil
}

func (s *memProfiles) SaveSignatureProfile(_ context.Context, p HostProfile) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]HostProfile{}
	}
	s.m[p.Host] = p
	return nil
}

// profilePeer is an inbox with a verifier policy, recording how each request was signed.
type profilePeer struct {
	t *testing.T
	v *Verifier
	// accept decides which verified signatures pass: "any", "rfc9421" (a strict
	// RFC 9421 inbox answering 401 with a Fedify-style Accept-Signature carrying a
	// nonce), "cavage" (a Mastodon-era inbox: RFC 9421 is 401 without a challenge),
	// "ed25519" (RFC 9421 ed25519 only, asking for it), "none" (401 always).
	accept   string
	software string // NodeInfo software name/version; "" serves no NodeInfo

	mu    sync.Mutex
	seen  []string // per request: "cavage", "rfc9421/<alg of key>", "refused"
	nonce string
}

func (p *profilePeer) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, s)
}

func (p *profilePeer) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func (p *profilePeer) challenge(w http.ResponseWriter) {
	p.mu.Lock()
	p.nonce = fmt.Sprintf("n%d", len(p.seen))
	nonce := p.nonce
	p.mu.Unlock()
	switch p.accept {
	case "rfc9421":
		w.Header().Set("Accept-Signature", `sig1=("@method" "@target-uri" "@authority" "content-digest");created;nonce="`+nonce+`"`)
	case "ed25519":
		w.Header().Set("Accept-Signature", `sig1=("@method" "@target-uri" "content-digest");created;alg="ed25519"`)
	}
	w.WriteHeader(http.StatusUnauthorized)
}

func (p *profilePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/nodeinfo":
		if p.software == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"links":[{"rel":%q,"href":"https://%s/nodeinfo/2.1"}]}`, NodeInfo21Schema, r.Host)
		return
	case "/nodeinfo/2.1":
		name, version, _ := strings.Cut(p.software, "/")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(NodeInfo{Version: "2.1", Software: NodeInfoSoftware{Name: name, Version: version}})
		return
	}
	body, _ := io.ReadAll(r.Body)
	rfc := r.Header.Get("Signature-Input") != ""
	if p.accept == "none" || (p.accept == "rfc9421" || p.accept == "ed25519") && !rfc || p.accept == "cavage" && rfc {
		p.record("refused")
		p.challenge(w)
		return
	}
	if p.accept == "rfc9421" {
		p.mu.Lock()
		want := p.nonce
		p.mu.Unlock()
		if !strings.Contains(r.Header.Get("Signature-Input"), `nonce="`+want+`"`) || !strings.Contains(r.Header.Get("Signature-Input"), `"@authority"`) {
			p.record("refused")
			p.challenge(w)
			return
		}
	}
	ver, err := p.v.VerifyRequest(r.Context(), r, body)
	if err != nil {
		p.record("refused")
		http.Error(w, err.Error(), StatusOf(err))
		return
	}
	got := ver.Scheme
	if rfc {
		got += "/" + strings.TrimPrefix(ver.KeyID[strings.LastIndexByte(ver.KeyID, '#'):], "#")
	}
	if p.accept == "ed25519" && got != SchemeRFC9421+"/ed25519-key" {
		p.record("refused")
		p.challenge(w)
		return
	}
	p.record(got)
	w.WriteHeader(http.StatusAccepted)
}

// TestSignatureProfiles checks, over real HTTPS on loopback, that the signature used
// for each kind of peer is chosen, learnt and stored per host, with at most one retry.
func TestSignatureProfiles(t *testing.T) {
	type step struct {
		seen    []string         // what the peer saw for this delivery
		status  int              // final status
		profile SignatureProfile // remembered afterwards
		source  string
	}
	tests := map[string]struct {
		accept, software string
		pin              SignatureProfile
		inbound          string // the peer signed RFC 9421 to us before, with this alg
		steps            []step
	}{
		"Mastodon-era peer: cavage, confirmed by the first knock": {accept: "cavage", steps: []step{
			{[]string{SchemeCavage}, 202, ProfileCavage, SourceKnock},
			{[]string{SchemeCavage}, 202, ProfileCavage, SourceKnock},
		}},
		"strict RFC 9421 peer with a nonce challenge (Fedify 2): one retry, then RFC 9421 first": {accept: "rfc9421", steps: []step{
			{[]string{"refused", "rfc9421/main-key"}, 202, ProfileRFC9421RSA, SourceAcceptSignature},
			// Every request needs a fresh nonce: the challenge is answered, not cavage.
			{[]string{"refused", "rfc9421/main-key"}, 202, ProfileRFC9421RSA, SourceAcceptSignature},
		}},
		"peer asking for ed25519 gets the Ed25519 key": {accept: "ed25519", steps: []step{
			{[]string{"refused", "rfc9421/ed25519-key"}, 202, ProfileRFC9421Ed25519, SourceAcceptSignature},
			{[]string{"rfc9421/ed25519-key"}, 202, ProfileRFC9421Ed25519, SourceAcceptSignature},
		}},
		"NodeInfo fedforge: RFC 9421 ed25519 on the first request": {accept: "any", software: "fedforge/0.5.0", steps: []step{
			{[]string{"rfc9421/ed25519-key"}, 202, ProfileRFC9421Ed25519, SourceNodeInfo},
		}},
		"NodeInfo mastodon: cavage, known before the first knock": {accept: "any", software: "mastodon/4.5.1", steps: []step{
			{[]string{SchemeCavage}, 202, ProfileCavage, SourceNodeInfo},
		}},
		"NodeInfo wrong about a peer: one fallback to cavage, remembered": {accept: "cavage", software: "fedforge/1.0.0", steps: []step{
			{[]string{"refused", SchemeCavage}, 202, ProfileCavage, SourceKnock},
			{[]string{SchemeCavage}, 202, ProfileCavage, SourceKnock},
		}},
		"inbound RFC 9421 RSA signer gets RFC 9421 with our RSA key": {accept: "any", inbound: AlgRSAv15SHA256, steps: []step{
			{[]string{"rfc9421/main-key"}, 202, ProfileRFC9421RSA, SourceInbound},
		}},
		"inbound RFC 9421 Ed25519 signer gets our Ed25519 key": {accept: "any", inbound: AlgEd25519RFC, steps: []step{
			{[]string{"rfc9421/ed25519-key"}, 202, ProfileRFC9421Ed25519, SourceInbound},
		}},
		"a peer refusing cavage without a challenge: no retry, nothing learnt": {accept: "none", steps: []step{
			{[]string{"refused"}, 401, ProfileCavage, ""},
		}},
		"a peer refusing everything after an RFC 9421 first knock: exactly one retry": {accept: "none", software: "fedforge/1.0.0", steps: []step{
			{[]string{"refused", "refused"}, 401, ProfileRFC9421Ed25519, SourceNodeInfo},
		}},
		"pinned RFC 9421: no retry, no learning": {accept: "cavage", pin: ProfileRFC9421RSA, steps: []step{
			{[]string{"refused"}, 401, ProfileRFC9421RSA, SourcePinned},
		}},
		"pinned cavage for a peer that would ask for RFC 9421": {accept: "any", software: "fedforge/1.0.0", pin: ProfileCavage, steps: []step{
			{[]string{SchemeCavage}, 202, ProfileCavage, SourcePinned},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n := newTestNet()
			p := newPeer(t, n)
			keys := NewKeyCache(n.client(true), nil, KeyCacheConfig{})
			peer := &profilePeer{t: t, v: NewVerifier(keys, 100), accept: tc.accept, software: tc.software}
			base := n.serve(t, "peer.example.com", peer)
			st := &memProfiles{}
			cfg := ClientConfig{Version: "test", Resolve: n.resolve, TLSConfig: tlsConfigWithRoots(n.roots), Profiles: st, NodeInfoProfiles: true}
			cfg.AllowedCIDRs = n.client(true).cfg.AllowedCIDRs
			client := NewClient(cfg)
			if tc.pin != "" {
				client.SetPins(func(h string) (SignatureProfile, bool) { return tc.pin, h == "peer.example.com" })
			}
			ctx := context.Background()
			if tc.inbound != "" {
				client.ObserveInbound(ctx, "peer.example.com", &Verified{Scheme: SchemeRFC9421, Algorithm: tc.inbound})
			}
			signer := &Signer{KeyID: p.base + "/users/alice#main-key", Key: loadPriv(t, "test-key-rsa"),
				Ed25519: loadPriv(t, "test-key-ed25519"), Ed25519KeyID: p.base + "/users/alice#ed25519-key"}
			for i, s := range tc.steps {
				before := len(peer.requests())
				resp, err := client.Deliver(ctx, base+"/inbox", []byte(fmt.Sprintf(`{"type":"Note","n":%d}`, i)), signer)
				if err != nil {
					t.Fatal(err)
				}
				got := peer.requests()[before:]
				if strings.Join(got, ",") != strings.Join(s.seen, ",") {
					t.Errorf("delivery %d: peer saw %v, want %v", i, got, s.seen)
				}
				if resp.Status != s.status {
					t.Errorf("delivery %d: status %d, want %d", i, resp.Status, s.status)
				}
				hp := client.ProfileFor("peer.example.com")
				if hp.Profile != s.profile || hp.Source != s.source {
					t.Errorf("delivery %d: profile %s from %q, want %s from %q", i, hp.Profile, hp.Source, s.profile, s.source)
				}
				if stored, ok, _ := st.LoadSignatureProfile(ctx, "peer.example.com"); s.source != "" && s.source != SourcePinned &&
					(!ok || stored.Profile != s.profile || stored.Source != s.source) {
					t.Errorf("delivery %d: stored %+v (found %v), want %s from %s", i, stored, ok, s.profile, s.source)
				}
			}
			// A new process (a restart, a delivery Job) starts from the store.
			if last := tc.steps[len(tc.steps)-1]; last.status == 202 && last.source != SourcePinned {
				fresh := NewClient(cfg)
				before := len(peer.requests())
				if _, err := fresh.Deliver(ctx, base+"/inbox", []byte(`{"type":"Note","n":"fresh"}`), signer); err != nil {
					t.Fatal(err)
				}
				if got := peer.requests()[before:]; got[len(got)-1] == "refused" || got[0] != last.seen[len(last.seen)-1] && tc.accept != "rfc9421" {
					t.Errorf("fresh client: peer saw %v, want %s at once", got, last.seen[len(last.seen)-1])
				}
			}
		})
	}
}

// TestSignedGETTeachesNothing checks that a 2xx to a signed GET (a public document that
// any server serves without checking the signature) does not confirm the default
// profile, so that a later inbound RFC 9421 signature still upgrades the host.
func TestSignedGETTeachesNothing(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	client := n.client(true)
	signer := &Signer{KeyID: p.base + "/users/alice#main-key", Key: loadPriv(t, "test-key-rsa")}
	if _, err := client.FetchObject(context.Background(), p.base+"/users/alice", signer); err != nil {
		t.Fatal(err)
	}
	if hp := client.ProfileFor("alice.example.com"); hp.Source != "" {
		t.Fatalf("a GET taught %+v", hp)
	}
	client.ObserveInbound(context.Background(), "alice.example.com", &Verified{Scheme: SchemeRFC9421, Algorithm: AlgRSAv15SHA256})
	if hp := client.ProfileFor("alice.example.com"); hp.Profile != ProfileRFC9421RSA || hp.Source != SourceInbound {
		t.Fatalf("after an inbound RFC 9421 signature: %+v", hp)
	}
}

// TestSignatureProfilesPinnedRowsInJobs checks that a client without live pins (a
// delivery Job) honours a pinned row from the store, and never overwrites it.
func TestSignatureProfilesPinnedRowsInJobs(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	keys := NewKeyCache(n.client(true), nil, KeyCacheConfig{})
	peer := &profilePeer{t: t, v: NewVerifier(keys, 100), accept: "cavage"}
	base := n.serve(t, "peer.example.com", peer)
	st := &memProfiles{m: map[string]HostProfile{"peer.example.com": {Host: "peer.example.com", Profile: ProfileRFC9421RSA, Source: SourcePinned, UpdatedAt: time.Now()}}}
	cfg := ClientConfig{Version: "test", Resolve: n.resolve, TLSConfig: tlsConfigWithRoots(n.roots), Profiles: st}
	cfg.AllowedCIDRs = n.client(true).cfg.AllowedCIDRs
	client := NewClient(cfg)
	signer := &Signer{KeyID: p.base + "/users/alice#main-key", Key: loadPriv(t, "test-key-rsa")}
	resp, err := client.Deliver(context.Background(), base+"/inbox", []byte(`{"type":"Note"}`), signer)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 401 || strings.Join(peer.requests(), ",") != "refused" {
		t.Fatalf("status %d, peer saw %v: want the pinned RFC 9421 only", resp.Status, peer.requests())
	}
	if got := st.m["peer.example.com"]; got.Source != SourcePinned {
		t.Fatalf("pinned row replaced: %+v", got)
	}
}

func TestProfileForSoftware(t *testing.T) {
	tests := map[string]struct {
		name, version string
		want          SignatureProfile
		ok            bool
	}{
		"fedforge":         {"fedforge", "0.1.0", ProfileRFC9421Ed25519, true},
		"Mastodon 4.5":     {"mastodon", "4.5.2+glitch", ProfileCavage, true},
		"GoToSocial":       {"GoToSocial", "0.19.1", ProfileCavage, true},
		"unknown software": {"hollo", "0.6.0", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := ProfileForSoftware(tc.name, tc.version)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("got %q %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
