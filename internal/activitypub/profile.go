package activitypub

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SignatureProfile names how requests to one host are signed: which specification and
// which of the actor's keys. docs/decisions.md ("Signatures chosen per peer") says which
// kind of peer receives which and why.
type SignatureProfile string

// The profiles we sign with.
const (
	// ProfileCavage is draft-cavage-http-signatures-12 with rsa-sha256 and the RSA key
	// (<actor>#main-key): what every Mastodon-era verifier takes. The default.
	ProfileCavage SignatureProfile = "cavage"
	// ProfileRFC9421RSA is RFC 9421 with rsa-v1_5-sha256 and the RSA key: for verifiers
	// of RFC 9421 that look keys up in publicKey only (Fedify, Mastodon 4.4+).
	ProfileRFC9421RSA SignatureProfile = "rfc9421-rsa"
	// ProfileRFC9421Ed25519 is RFC 9421 with ed25519 and the Ed25519 key
	// (<actor>#ed25519-key, an FEP-521a Multikey in assertionMethod): only for verifiers
	// that read assertionMethod Multikeys for HTTP signatures.
	ProfileRFC9421Ed25519 SignatureProfile = "rfc9421-ed25519"
)

// Profiles lists every profile, in the order of the API enum.
var Profiles = []SignatureProfile{ProfileCavage, ProfileRFC9421RSA, ProfileRFC9421Ed25519}

// Valid reports whether p is a known profile.
func (p SignatureProfile) Valid() bool {
	for _, k := range Profiles {
		if p == k {
			return true
		}
	}
	return false
}

// Scheme is the specification the profile signs with (SchemeCavage or SchemeRFC9421).
func (p SignatureProfile) Scheme() string {
	if p == ProfileRFC9421RSA || p == ProfileRFC9421Ed25519 {
		return SchemeRFC9421
	}
	return SchemeCavage
}

// Where a host's profile was learnt, strongest last but for pinned, which nothing
// overrides.
const (
	// SourcePinned: the FederationServer's spec.signatures.pins.
	SourcePinned = "pinned"
	// SourceKnock: a request signed with the profile was answered (2xx), or the double
	// knock fell back to it.
	SourceKnock = "knock"
	// SourceAcceptSignature: the peer answered a 401 with Accept-Signature and took the
	// RFC 9421 signature that fulfilled it.
	SourceAcceptSignature = "accept-signature"
	// SourceInbound: the peer signed its own requests to our inbox with RFC 9421, so its
	// software verifies RFC 9421 too.
	SourceInbound = "inbound"
	// SourceNodeInfo: the peer's NodeInfo software name and version are in the table of
	// ProfileForSoftware.
	SourceNodeInfo = "nodeinfo"
)

// HostProfile is the signature profile used for one host and where it came from.
type HostProfile struct {
	// Host is host[:port], lower-cased.
	Host string
	// Profile is what requests to Host are signed with.
	Profile SignatureProfile
	// Source says how it was learnt (Source* constants).
	Source string
	// Software is the peer's NodeInfo "name/version" when known.
	Software string
	// UpdatedAt is when it was last learnt (UTC).
	UpdatedAt time.Time
}

// ProfileStore persists learnt profiles so that a restart, another replica or a delivery
// Job starts from what was learnt. Load returns found=false for an unknown host. Save
// must not replace a pinned row with a learnt one (the store enforces it too).
type ProfileStore interface {
	LoadSignatureProfile(ctx context.Context, host string) (p HostProfile, found bool, err error)
	SaveSignatureProfile(ctx context.Context, p HostProfile) error
}

// softwareProfile is one row of what a peer's NodeInfo tells us about its verifier.
type softwareProfile struct {
	name     string
	minMajor int // the first major version (0: all) that verifies what profile needs
	minMinor int
	profile  SignatureProfile
}

// softwareProfiles is the NodeInfo table (docs/decisions.md, "Signatures chosen per
// peer"). A software not listed gets no profile from NodeInfo: cavage until a knock or
// an Accept-Signature says otherwise.
//   - fedforge: our own verifier reads assertionMethod Multikeys and checks RFC 9421
//     ed25519 (TestSignatureProfilesOverHTTP); every release that serves NodeInfo does.
//   - mastodon, gotosocial, pleroma, akkoma, misskey, sharkey, friendica, lemmy,
//     peertube: read one RSA publicKey and verify cavage; Mastodon's RFC 9421 support
//     (4.4+) is, to our knowledge, behind an experimental feature flag that is off by
//     default, so cavage is the one signature known to verify. An instance that takes
//     RFC 9421 and says so (Accept-Signature, or its own RFC 9421 signatures) moves on.
var softwareProfiles = []softwareProfile{
	{name: "fedforge", profile: ProfileRFC9421Ed25519},
	{name: "mastodon", profile: ProfileCavage},
	{name: "gotosocial", profile: ProfileCavage},
	{name: "pleroma", profile: ProfileCavage},
	{name: "akkoma", profile: ProfileCavage},
	{name: "misskey", profile: ProfileCavage},
	{name: "sharkey", profile: ProfileCavage},
	{name: "friendica", profile: ProfileCavage},
	{name: "lemmy", profile: ProfileCavage},
	{name: "peertube", profile: ProfileCavage},
}

// ProfileForSoftware maps a NodeInfo software name and version to the profile its
// verifier is known to take; ok is false for software not in the table.
func ProfileForSoftware(name, version string) (SignatureProfile, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	major, minor := parseVersion(version)
	for _, s := range softwareProfiles {
		if s.name != name {
			continue
		}
		if major < s.minMajor || (major == s.minMajor && minor < s.minMinor) {
			continue
		}
		return s.profile, true
	}
	return "", false
}

// parseVersion reads "major.minor" from the front of a version such as "4.5.2+glitch".
func parseVersion(v string) (int, int) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	parts := strings.SplitN(v, ".", 3)
	num := func(s string) int {
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		n, _ := strconv.Atoi(s[:end])
		return n
	}
	major, minor := 0, 0
	if len(parts) > 0 {
		major = num(parts[0])
	}
	if len(parts) > 1 {
		minor = num(parts[1])
	}
	return major, minor
}

// profileMemory is the client's in-process view of host profiles, in front of the
// ProfileStore: bounded; when full an arbitrary entry is forgotten and reloaded from
// the store on the next request to that host.
type profileMemory struct {
	mu     sync.Mutex
	max    int
	m      map[string]HostProfile
	probed map[string]bool // hosts whose store row and NodeInfo were consulted
}

func newProfileMemory(max int) *profileMemory {
	if max <= 0 {
		max = 10000
	}
	return &profileMemory{max: max, m: map[string]HostProfile{}, probed: map[string]bool{}}
}

func (s *profileMemory) get(host string) (HostProfile, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[host]
	return p, ok, s.probed[host]
}

func (s *profileMemory) set(p HostProfile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[p.Host]; !ok && len(s.m) >= s.max {
		for k := range s.m {
			delete(s.m, k)
			delete(s.probed, k)
			break
		}
	}
	s.m[p.Host] = p
	s.probed[p.Host] = true
}

func (s *profileMemory) markProbed(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.probed) >= 2*s.max {
		clear(s.probed)
	}
	s.probed[host] = true
}

func (s *profileMemory) forget(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, host)
	delete(s.probed, host)
}
