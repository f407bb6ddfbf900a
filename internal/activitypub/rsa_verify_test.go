package activitypub

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
	"testing"
)

// TestVerifyRSASHA256AgreesWithCryptoRSA checks the precomputed-modulus path against
// crypto/rsa on the same inputs: a valid signature, and hostile variants (each byte of
// the signature flipped in turn at a stride, a different hash, s >= N, short and long
// signatures, a SHA-512 and a PSS signature, another key's signature). The fast path must
// accept exactly what crypto/rsa accepts.
func TestVerifyRSASHA256AgreesWithCryptoRSA(t *testing.T) {
	priv := loadPriv(t, "test-key-rsa").(*rsa.PrivateKey)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := &priv.PublicKey
	h := sha256.Sum256([]byte("POST /inbox"))
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	// The first verify goes through crypto/rsa and keeps the modulus.
	if err := verifyRSASHA256(pub, h[:], sig); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	pk := rsaKeys.get(pub)
	if pk == nil {
		t.Fatal("modulus not kept after a verified signature")
	}
	// A copy of the key (parsed again) shares the entry.
	if rsaKeys.get(&rsa.PublicKey{N: new(big.Int).Set(pub.N), E: pub.E}) != pk {
		t.Error("an equal key parsed again does not share the kept modulus")
	}
	if rsaKeys.get(&rsa.PublicKey{N: pub.N, E: 3}) != nil {
		t.Error("a key with another exponent shares the modulus entry")
	}

	type tc struct {
		name   string
		hashed []byte
		sig    []byte
	}
	cases := []tc{{"valid", h[:], sig}}
	for i := 0; i < len(sig); i += 17 {
		s := append([]byte(nil), sig...)
		s[i] ^= 0x01
		cases = append(cases, tc{"flipped byte", h[:], s})
	}
	h2 := sha256.Sum256([]byte("POST /other"))
	cases = append(cases, tc{"other hash", h2[:], sig})
	cases = append(cases, tc{"short hash", h[:31], sig})
	cases = append(cases, tc{"s = N", h[:], pub.N.FillBytes(make([]byte, pub.Size()))})
	cases = append(cases, tc{"s > N", h[:], new(big.Int).Add(pub.N, big.NewInt(5)).FillBytes(make([]byte, pub.Size()))})
	cases = append(cases, tc{"zero", h[:], make([]byte, pub.Size())})
	cases = append(cases, tc{"short signature", h[:], sig[1:]})
	cases = append(cases, tc{"long signature", h[:], append([]byte{0}, sig...)})
	h512 := sha512.Sum512([]byte("POST /inbox"))
	s512, _ := rsa.SignPKCS1v15(nil, priv, crypto.SHA512, h512[:])
	cases = append(cases, tc{"SHA-512 signature", h512[:32], s512})
	pss, _ := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, h[:], nil)
	cases = append(cases, tc{"PSS signature", h[:], pss})
	so, _ := rsa.SignPKCS1v15(nil, other, crypto.SHA256, h[:])
	cases = append(cases, tc{"other key's signature", h[:], so})

	for _, c := range cases {
		want := rsa.VerifyPKCS1v15(pub, crypto.SHA256, c.hashed, c.sig) == nil
		if got := pk.verifySHA256(c.hashed, c.sig); got != want {
			t.Errorf("%s: fast path says %v, crypto/rsa %v", c.name, got, want)
		}
		if got := verifyRSASHA256(pub, c.hashed, c.sig) == nil; got != want {
			t.Errorf("%s: verifyRSASHA256 says %v, crypto/rsa %v", c.name, got, want)
		}
	}
}

// TestVerifyRSASHA256SmallKeyRefused: a key crypto/rsa refuses (under 1024 bits) is never
// kept, so the fast path cannot accept its signatures. crypto/rsa no longer makes such
// keys, so the key and its signature are computed here with math/big.
func TestVerifyRSASHA256SmallKeyRefused(t *testing.T) {
	p, err := rand.Prime(rand.Reader, 256)
	if err != nil {
		t.Fatal(err)
	}
	q, err := rand.Prime(rand.Reader, 256)
	if err != nil {
		t.Fatal(err)
	}
	n := new(big.Int).Mul(p, q)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, big.NewInt(1)), new(big.Int).Sub(q, big.NewInt(1)))
	d := new(big.Int).ModInverse(big.NewInt(65537), phi)
	if d == nil {
		t.Fatal("65537 not invertible; run again")
	}
	pub := &rsa.PublicKey{N: n, E: 65537}
	h := sha256.Sum256([]byte("x"))
	k := pub.Size()
	em := make([]byte, k)
	em[1] = 1
	tail := len(sha256DigestInfo) + len(h)
	for i := 2; i < k-tail-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-tail:], sha256DigestInfo)
	copy(em[k-len(h):], h[:])
	sig := new(big.Int).Exp(new(big.Int).SetBytes(em), d, n).FillBytes(make([]byte, k))
	if verifyRSASHA256(pub, h[:], sig) == nil {
		t.Error("a 512-bit key's signature was accepted")
	}
	if rsaKeys.get(pub) != nil {
		t.Error("a 512-bit key was kept")
	}
}

// BenchmarkRSAVerifyKept is BenchmarkRawRSAVerify through verifyRSASHA256, with the
// key's modulus kept after the first verify (what the inbox does for a known key).
func BenchmarkRSAVerifyKept(b *testing.B) {
	k := loadPriv(b, "test-key-rsa").(*rsa.PrivateKey)
	msg := benchSigningString()
	h := sha256.Sum256(msg)
	sig, _ := rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := sha256.Sum256(msg)
		if err := verifyRSASHA256(&k.PublicKey, h[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}
