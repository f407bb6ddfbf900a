package keys

import (
	"errors"
	"testing"
)

func TestGenerateRoundTrip(t *testing.T) {
	p, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	data, err := p.Data()
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromData(data)
	if err != nil {
		t.Fatalf("FromData of fresh keys: %v", err)
	}
	if !got.RSA.Equal(p.RSA) || !got.Ed25519.Equal(p.Ed25519) {
		t.Fatal("parsed keys differ from generated keys")
	}
	if got.RSA.N.BitLen() != RSABits {
		t.Fatalf("RSA key has %d bits", got.RSA.N.BitLen())
	}
	if Fingerprint(p.RSA.Public()) == Fingerprint(p.Ed25519.Public()) {
		t.Fatal("fingerprints of different keys are equal")
	}
}

func TestFromDataRefusesTampering(t *testing.T) {
	p, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := p.Data()
	bad, _ := other.Data()
	tests := map[string]func(d map[string][]byte){
		"missing rsa private":     func(d map[string][]byte) { delete(d, RSAPrivateKey) },
		"garbage ed25519 private": func(d map[string][]byte) { d[Ed25519PrivateKey] = []byte("not a key") },
		"rsa public of other key": func(d map[string][]byte) { d[RSAPublicKey] = bad[RSAPublicKey] },
		"ed25519 public swapped":  func(d map[string][]byte) { d[Ed25519PublicKey] = bad[Ed25519PublicKey] },
		"rsa slot holds ed25519":  func(d map[string][]byte) { d[RSAPrivateKey] = good[Ed25519PrivateKey] },
		"missing ed25519 public":  func(d map[string][]byte) { delete(d, Ed25519PublicKey) },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			d := map[string][]byte{}
			for k, v := range good {
				d[k] = v
			}
			mutate(d)
			if _, err := FromData(d); !errors.Is(err, ErrInvalid) {
				t.Fatalf("FromData = %v, want ErrInvalid", err)
			}
		})
	}
}
