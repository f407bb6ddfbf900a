package activitypub

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"strings"
	"sync"
)

// cryptoSigner is the signing interface of every private key type we use.
type cryptoSigner = crypto.Signer

// rfc9421AlgFor picks the RFC 9421 algorithm for our key: rsa-v1_5-sha256 for RSA (the
// one Mastodon verifies with the publicKey it knows), ed25519 for Ed25519 keys.
func rfc9421AlgFor(k crypto.Signer) (string, error) {
	switch k.(type) {
	case *rsa.PrivateKey:
		return AlgRSAv15SHA256, nil
	case ed25519.PrivateKey:
		return AlgEd25519RFC, nil
	case *ecdsa.PrivateKey:
		return AlgECDSAP256SHA256, nil
	}
	return "", newErr(KindUnsupported, "", nil, "no RFC 9421 algorithm for %T", k)
}

// schemeMemory remembers, per host, which signature scheme worked: the state of double
// knocking. It is bounded; when full, an arbitrary entry is forgotten (that host simply
// starts again with cavage, which every peer accepts).
type schemeMemory struct {
	mu  sync.Mutex
	max int
	m   map[string]string
}

func newSchemeMemory(max int) *schemeMemory {
	if max <= 0 {
		max = 10000
	}
	return &schemeMemory{max: max, m: make(map[string]string)}
}

func (s *schemeMemory) get(host string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[strings.ToLower(host)]; ok {
		return v
	}
	return SchemeCavage
}

func (s *schemeMemory) set(host, scheme string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	host = strings.ToLower(host)
	if _, ok := s.m[host]; !ok && len(s.m) >= s.max {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[host] = scheme
}
