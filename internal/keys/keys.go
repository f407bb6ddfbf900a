// Package keys makes, encodes and checks the signing keys of a FederatedActor, and defines
// the layout of the Secret that holds them. The key controller writes that Secret; the
// server and delivery Jobs read it. Keeping both sides on this one package means the
// layout cannot drift.
package keys

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// Keys of the actor key Secret's data.
const (
	// RSAPrivateKey is the current RSA-2048 private key, PKCS#8 PEM (draft-cavage peers).
	RSAPrivateKey = "rsa.key"
	// RSAPublicKey is the current RSA public key, PKIX PEM, as published in publicKey.
	RSAPublicKey = "rsa.pub"
	// Ed25519PrivateKey is the current Ed25519 private key, PKCS#8 PEM (RFC 9421 peers).
	Ed25519PrivateKey = "ed25519.key"
	// Ed25519PublicKey is the current Ed25519 public key, PKIX PEM.
	Ed25519PublicKey = "ed25519.pub"
	// PreviousRSAPublicKey is the RSA public key before the last rotation, published until
	// the overlap window ends.
	PreviousRSAPublicKey = "previous-rsa.pub"
	// PreviousEd25519PublicKey is the Ed25519 public key before the last rotation.
	PreviousEd25519PublicKey = "previous-ed25519.pub"
	// PreviousRSAPrivateKey is the RSA private key before the last rotation, kept for the
	// overlap window only: the Update that announces new keys is signed with it, so peers
	// that cached the old key can verify the announcement.
	PreviousRSAPrivateKey = "previous-rsa.key"
	// PreviousEd25519PrivateKey is the Ed25519 private key before the last rotation, kept
	// for the overlap window only, for the same Update sent to peers that verify our
	// Ed25519 key (docs/decisions.md, "Signatures chosen per peer").
	PreviousEd25519PrivateKey = "previous-ed25519.key"
)

// RSABits is the RSA modulus size; 2048 is what Mastodon makes and accepts.
const RSABits = 2048

// Pair is an actor's two current key pairs.
type Pair struct {
	RSA     *rsa.PrivateKey
	Ed25519 ed25519.PrivateKey
}

// Generate makes a fresh RSA-2048 and Ed25519 pair.
func Generate() (*Pair, error) {
	r, err := rsa.GenerateKey(rand.Reader, RSABits)
	if err != nil {
		return nil, fmt.Errorf("generating RSA key: %w", err)
	}
	_, e, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating Ed25519 key: %w", err)
	}
	return &Pair{RSA: r, Ed25519: e}, nil
}

// EncodePrivate returns the PKCS#8 PEM of a private key.
func EncodePrivate(k crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublic returns the PKIX PEM of a public key, the form ActivityPub publishes.
func EncodePublic(k crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// Data returns the Secret data for p, carrying over previous public keys when given.
func (p *Pair) Data() (map[string][]byte, error) {
	out := map[string][]byte{}
	var err error
	if out[RSAPrivateKey], err = EncodePrivate(p.RSA); err != nil {
		return nil, err
	}
	if out[RSAPublicKey], err = EncodePublic(p.RSA.Public()); err != nil {
		return nil, err
	}
	if out[Ed25519PrivateKey], err = EncodePrivate(p.Ed25519); err != nil {
		return nil, err
	}
	if out[Ed25519PublicKey], err = EncodePublic(p.Ed25519.Public()); err != nil {
		return nil, err
	}
	return out, nil
}

// ErrInvalid reports Secret data that does not hold a valid, matching key set.
var ErrInvalid = errors.New("invalid key data")

// FromData parses and checks the current keys in Secret data: both private keys parse,
// have the expected type and size, and their published public keys match them.
func FromData(data map[string][]byte) (*Pair, error) {
	r, err := parsePrivate(data[RSAPrivateKey])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, RSAPrivateKey, err)
	}
	rk, ok := r.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() < RSABits {
		return nil, fmt.Errorf("%w: %s is not an RSA key of at least %d bits", ErrInvalid, RSAPrivateKey, RSABits)
	}
	e, err := parsePrivate(data[Ed25519PrivateKey])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, Ed25519PrivateKey, err)
	}
	ek, ok := e.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an Ed25519 key", ErrInvalid, Ed25519PrivateKey)
	}
	if err := publicMatches(data[RSAPublicKey], rk.Public()); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, RSAPublicKey, err)
	}
	if err := publicMatches(data[Ed25519PublicKey], ek.Public()); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, Ed25519PublicKey, err)
	}
	return &Pair{RSA: rk, Ed25519: ek}, nil
}

// ParsePublic parses a PKIX PEM public key.
func ParsePublic(b []byte) (crypto.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParsePKIXPublicKey(blk.Bytes)
}

// Fingerprint is the hex SHA-256 of a public key's PKIX DER; it tells keys apart in status
// without publishing anything secret.
func Fingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func parsePrivate(b []byte) (crypto.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParsePKCS8PrivateKey(blk.Bytes)
}

type equaler interface{ Equal(crypto.PublicKey) bool }

func publicMatches(b []byte, want crypto.PublicKey) error {
	got, err := ParsePublic(b)
	if err != nil {
		return err
	}
	if !want.(equaler).Equal(got) {
		return errors.New("does not match the private key")
	}
	return nil
}
