package activitypub

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// oidRSASSAPSS is id-RSASSA-PSS (RFC 4055); keys wrapped with it are rejected by
// x509.ParsePKCS8PrivateKey, yet RFC 9421's own test key uses it.
var oidRSASSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}

// ParsePublicKeyPEM parses the publicKeyPem of an actor (PKIX "PUBLIC KEY", or PKCS#1
// "RSA PUBLIC KEY" as some older servers send). It is called once per fetched key; the
// parsed key is what the cache keeps, so verification never parses PEM again.
func ParsePublicKeyPEM(s string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, newErr(KindMalformed, "", nil, "publicKeyPem is not PEM")
	}
	switch block.Type {
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, newErr(KindMalformed, "", err, "PKCS#1 public key")
		}
		return k, nil
	default:
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, newErr(KindMalformed, "", err, "PKIX public key")
		}
		switch k.(type) {
		case *rsa.PublicKey, ed25519.PublicKey, *ecdsa.PublicKey:
			return k, nil
		}
		return nil, newErr(KindUnsupported, "", nil, "public key type %T", k)
	}
}

// ParsePrivateKeyPEM parses a signing key as Secrets hold it: PKCS#8 (including the
// id-RSASSA-PSS wrapping), PKCS#1 RSA or SEC 1 EC. It returns a crypto.Signer so that
// signing code does not care about the key type.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("activitypub: private key is not PEM")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("activitypub: private key type %T cannot sign", k)
	}
	var p8 struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if _, err2 := asn1.Unmarshal(block.Bytes, &p8); err2 == nil && p8.Algo.Algorithm.Equal(oidRSASSAPSS) {
		return x509.ParsePKCS1PrivateKey(p8.PrivateKey)
	}
	return nil, fmt.Errorf("activitypub: parse private key: %w", err)
}

// MarshalPublicKeyPEM renders a public key as PKIX PEM, the form Mastodon expects in
// publicKey.publicKeyPem.
func MarshalPublicKeyPEM(k crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// multicodecEd25519Pub is the varint multicodec prefix of an Ed25519 public key (0xed).
var multicodecEd25519Pub = []byte{0xed, 0x01}

// EncodeMultibaseEd25519 renders an Ed25519 public key as FEP-521a publicKeyMultibase
// ("z6Mk..."), which is how we publish our Ed25519 key in assertionMethod.
func EncodeMultibaseEd25519(k ed25519.PublicKey) string {
	return "z" + base58Encode(append(append([]byte{}, multicodecEd25519Pub...), k...))
}

// DecodeMultibaseKey parses a publicKeyMultibase value from a remote Multikey. Only
// base58btc Ed25519 keys are accepted: those are what FEP-521a peers publish.
func DecodeMultibaseKey(s string) (crypto.PublicKey, error) {
	if len(s) < 2 || s[0] != 'z' {
		return nil, newErr(KindUnsupported, "", nil, "multibase encoding other than base58btc")
	}
	b, err := base58Decode(s[1:])
	if err != nil {
		return nil, newErr(KindMalformed, "", err, "publicKeyMultibase")
	}
	if len(b) != 2+ed25519.PublicKeySize || b[0] != 0xed || b[1] != 0x01 {
		return nil, newErr(KindUnsupported, "", nil, "multikey is not an Ed25519 public key")
	}
	return ed25519.PublicKey(b[2:]), nil
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

func base58Encode(b []byte) string {
	n := new(big.Int).SetBytes(b)
	var out []byte
	mod, radix := new(big.Int), big.NewInt(58)
	for n.Sign() > 0 {
		n.DivMod(n, radix, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func base58Decode(s string) ([]byte, error) {
	if len(s) > 256 {
		return nil, errors.New("base58 value too long")
	}
	n, radix := new(big.Int), big.NewInt(58)
	zeros := 0
	for i := 0; i < len(s) && s[i] == '1'; i++ {
		zeros++
	}
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base58Alphabet, s[i])
		if d < 0 {
			return nil, fmt.Errorf("invalid base58 character %q", s[i])
		}
		n.Mul(n, radix).Add(n, big.NewInt(int64(d)))
	}
	return append(make([]byte, zeros), n.Bytes()...), nil
}
