package activitypub

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"sync"

	"filippo.io/bigmod"
)

// verifyRSASHA256 checks an RSASSA-PKCS1-v1_5 SHA-256 signature, the one every cavage
// rsa-sha256 and RFC 9421 rsa-v1_5-sha256 request carries. crypto/rsa converts the public
// key to its internal form (a modulus with its Montgomery constant R² mod N) on every
// call, about a third of each verify's CPU (docs/benchmarks.md, issue 17), and keeps no
// converted form of a *rsa.PublicKey. This keeps it per key: the first signature of a key
// is checked by crypto/rsa (so its size and exponent checks apply), and once a signature
// of that key verified there, the key's modulus is kept and later signatures are checked
// with filippo.io/bigmod (Go's own bigmod, exported) against the exact encoded message,
// as crypto/rsa does. A signature the fast path refuses is checked again by crypto/rsa,
// which decides, so a refusal is always crypto/rsa's.
func verifyRSASHA256(k *rsa.PublicKey, hashed, sig []byte) error {
	if pk := rsaKeys.get(k); pk != nil && pk.verifySHA256(hashed, sig) {
		return nil
	}
	if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, hashed, sig); err != nil {
		return err
	}
	rsaKeys.put(k)
	return nil
}

// sha256DigestInfo is the DER prefix of a SHA-256 DigestInfo (RFC 8017, section 9.2).
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// rsaKey is a public key's precomputed modulus.
type rsaKey struct {
	n *bigmod.Modulus
	e uint
	k int // modulus size in bytes
}

// verifySHA256 reports whether sig is a PKCS#1 v1.5 SHA-256 signature of hashed: s < N,
// and s^e mod N equal to 0x00 0x01 0xff... 0x00 DigestInfo hash (RFC 8017, 8.2.2).
func (pk *rsaKey) verifySHA256(hashed, sig []byte) bool {
	if len(hashed) != 32 || len(sig) != pk.k {
		return false
	}
	s, err := bigmod.NewNat().SetBytes(sig, pk.n) // refuses s >= N
	if err != nil {
		return false
	}
	em := bigmod.NewNat().ExpShortVarTime(s, pk.e, pk.n).Bytes(pk.n)
	tail := len(sha256DigestInfo) + len(hashed)
	if len(em) != pk.k || pk.k < tail+11 || em[0] != 0 || em[1] != 1 || em[pk.k-tail-1] != 0 {
		return false
	}
	for _, b := range em[2 : pk.k-tail-1] {
		if b != 0xff {
			return false
		}
	}
	return bytes.Equal(em[pk.k-tail:pk.k-len(hashed)], sha256DigestInfo) && bytes.Equal(em[pk.k-len(hashed):], hashed)
}

// maxRSAKeys bounds the precomputed keys (about 1 KB each for RSA-2048 with its map key):
// the key cache's default size, so that every cached key can have its modulus kept.
const maxRSAKeys = 10000

// rsaKeyCache maps a public key, by its modulus, to the precomputed modulus. Keyed by
// value rather than by *rsa.PublicKey so that callers that parse a key per request share
// one entry, and an entry never outlives the meaning of its key.
type rsaKeyCache struct {
	mu   sync.RWMutex
	keys map[string]*rsaKey
}

var rsaKeys = &rsaKeyCache{keys: map[string]*rsaKey{}}

// modulusBytes writes k's modulus into buf when it fits, without allocating.
func modulusBytes(k *rsa.PublicKey, buf []byte) []byte {
	if k.N == nil || k.N.Sign() <= 0 || (k.N.BitLen()+7)/8 > len(buf) {
		return nil
	}
	return k.N.FillBytes(buf[:(k.N.BitLen()+7)/8])
}

func (c *rsaKeyCache) get(k *rsa.PublicKey) *rsaKey {
	var buf [1024]byte
	n := modulusBytes(k, buf[:])
	if n == nil {
		return nil
	}
	c.mu.RLock()
	pk := c.keys[string(n)]
	c.mu.RUnlock()
	if pk == nil || pk.e != uint(k.E) {
		return nil
	}
	return pk
}

// put precomputes k's modulus; called only after crypto/rsa verified a signature with k.
func (c *rsaKeyCache) put(k *rsa.PublicKey) {
	var buf [1024]byte
	nb := modulusBytes(k, buf[:])
	if nb == nil || k.E <= 0 {
		return
	}
	n, err := bigmod.NewModulus(nb)
	if err != nil {
		return
	}
	pk := &rsaKey{n: n, e: uint(k.E), k: k.Size()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) >= maxRSAKeys {
		for old := range c.keys {
			delete(c.keys, old)
			break
		}
	}
	c.keys[string(nb)] = pk
}
