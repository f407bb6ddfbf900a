package activitypub

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// staticKeys resolves one already-parsed key, so that benchmarks measure signature work
// and not the network; the key cache hands out parsed keys the same way.
type staticKeys struct{ k *RemoteKey }

func (s staticKeys) ResolveKey(context.Context, string, bool) (*RemoteKey, error) { return s.k, nil }

var benchBody = []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"https://a.example.com/users/alice/follows/1","type":"Follow","actor":"https://a.example.com/users/alice","object":"https://b.example.com/actors/repo"}`)

var benchNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func benchRequest() *http.Request {
	r := httptest.NewRequest("POST", "https://fedforge.example.com/inbox", bytes.NewReader(benchBody))
	r.Header.Set("Content-Type", "application/activity+json")
	return r
}

// Raw crypto over a signing string of the size cavage produces, for the ratios.
func benchSigningString() []byte {
	r := benchRequest()
	r.Header.Set("Date", benchNow.Format(http.TimeFormat))
	r.Header.Set("Digest", DigestSHA256(benchBody))
	s, _ := CavageSigningString(r, []string{"(request-target)", "host", "date", "digest"}, 0, 0)
	return []byte(s)
}

func BenchmarkRawRSASign(b *testing.B) {
	k := loadPriv(b, "test-key-rsa").(*rsa.PrivateKey)
	msg := benchSigningString()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := sha256.Sum256(msg)
		if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawRSAVerify(b *testing.B) {
	k := loadPriv(b, "test-key-rsa").(*rsa.PrivateKey)
	msg := benchSigningString()
	h := sha256.Sum256(msg)
	sig, _ := rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, h[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEd25519Sign(b *testing.B) {
	k := loadPriv(b, "test-key-ed25519").(ed25519.PrivateKey)
	msg := benchSigningString()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = ed25519.Sign(k, msg)
	}
}

func BenchmarkRawEd25519Verify(b *testing.B) {
	k := loadPriv(b, "test-key-ed25519").(ed25519.PrivateKey)
	msg := benchSigningString()
	sig := ed25519.Sign(k, msg)
	pub := k.Public().(ed25519.PublicKey)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
}

func benchSign(b *testing.B, scheme string, key crypto.Signer) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := benchRequest()
		var err error
		if scheme == SchemeRFC9421 {
			alg, _ := rfc9421AlgFor(key)
			err = SignRFC9421(Message{Request: r}, benchBody, key, RFC9421Options{KeyID: "https://a.example.com/users/alice#main-key", Alg: alg, Created: benchNow})
		} else {
			err = SignCavage(r, benchBody, key, "https://a.example.com/users/alice#main-key", CavageOptions{Now: benchNow})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchVerify(b *testing.B, scheme string, key crypto.Signer) {
	r := benchRequest()
	if scheme == SchemeRFC9421 {
		alg, _ := rfc9421AlgFor(key)
		_ = SignRFC9421(Message{Request: r}, benchBody, key, RFC9421Options{KeyID: "https://a.example.com/users/alice#main-key", Alg: alg, Created: benchNow})
	} else {
		_ = SignCavage(r, benchBody, key, "https://a.example.com/users/alice#main-key", CavageOptions{Now: benchNow})
	}
	v := &Verifier{Keys: staticKeys{&RemoteKey{ID: "https://a.example.com/users/alice#main-key", Owner: "https://a.example.com/users/alice", Key: key.Public()}},
		Now: func() time.Time { return benchNow }}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.VerifyRequest(ctx, r, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCavageSignRSA(b *testing.B) { benchSign(b, SchemeCavage, loadPriv(b, "test-key-rsa")) }
func BenchmarkCavageVerifyRSA(b *testing.B) {
	benchVerify(b, SchemeCavage, loadPriv(b, "test-key-rsa"))
}
func BenchmarkCavageSignEd25519(b *testing.B) {
	benchSign(b, SchemeCavage, loadPriv(b, "test-key-ed25519"))
}
func BenchmarkCavageVerifyEd25519(b *testing.B) {
	benchVerify(b, SchemeCavage, loadPriv(b, "test-key-ed25519"))
}
func BenchmarkRFC9421SignRSA(b *testing.B) { benchSign(b, SchemeRFC9421, loadPriv(b, "test-key-rsa")) }
func BenchmarkRFC9421VerifyRSA(b *testing.B) {
	benchVerify(b, SchemeRFC9421, loadPriv(b, "test-key-rsa"))
}
func BenchmarkRFC9421SignEd25519(b *testing.B) {
	benchSign(b, SchemeRFC9421, loadPriv(b, "test-key-ed25519"))
}
func BenchmarkRFC9421VerifyEd25519(b *testing.B) {
	benchVerify(b, SchemeRFC9421, loadPriv(b, "test-key-ed25519"))
}
