package activitypub

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"hash"
	"strings"

	"github.com/dunglas/httpsfv"
)

// DigestSHA256 returns the value of a draft-cavage era Digest header (RFC 3230) for body,
// "SHA-256=<base64>", the only algorithm Mastodon sends and checks.
func DigestSHA256(body []byte) string {
	sum := sha256.Sum256(body)
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
}

// ContentDigest returns an RFC 9530 Content-Digest value for body with the given
// algorithm ("sha-256" or "sha-512"); we send sha-256, which Mastodon requires.
func ContentDigest(alg string, body []byte) string {
	var h hash.Hash
	switch alg {
	case "sha-512":
		h = sha512.New()
	default:
		alg, h = "sha-256", sha256.New()
	}
	h.Write(body)
	return alg + "=:" + base64.StdEncoding.EncodeToString(h.Sum(nil)) + ":"
}

// VerifyDigest checks a Digest header (RFC 3230) against body. It accepts several
// comma-separated instances and algorithm names in any case, and requires that a SHA-256
// or SHA-512 instance is present and that every instance it understands matches.
func VerifyDigest(header string, body []byte) error {
	if strings.TrimSpace(header) == "" {
		return newErr(KindMalformed, "", nil, "missing Digest header")
	}
	checked := false
	for _, part := range strings.Split(header, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return newErr(KindMalformed, "", nil, "Digest instance without '='")
		}
		var sum []byte
		switch strings.ToLower(alg) {
		case "sha-256":
			s := sha256.Sum256(body)
			sum = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			sum = s[:]
		default:
			continue
		}
		got, err := base64.StdEncoding.DecodeString(val)
		if err != nil {
			return newErr(KindMalformed, "", err, "Digest value is not base64")
		}
		if subtle.ConstantTimeCompare(got, sum) != 1 {
			return newErr(KindDigestMismatch, "", nil, "Digest %s does not match the body", strings.ToLower(alg))
		}
		checked = true
	}
	if !checked {
		return newErr(KindUnsupported, "", nil, "no SHA-256 or SHA-512 Digest instance")
	}
	return nil
}

// VerifyContentDigest checks an RFC 9530 Content-Digest header (a structured-field
// dictionary of byte sequences) against body: at least one sha-256 or sha-512 member must
// be present and every such member must match.
func VerifyContentDigest(header string, body []byte) error {
	if strings.TrimSpace(header) == "" {
		return newErr(KindMalformed, "", nil, "missing Content-Digest header")
	}
	dict, err := httpsfv.UnmarshalDictionary([]string{header})
	if err != nil {
		return newErr(KindMalformed, "", err, "Content-Digest is not a structured dictionary")
	}
	checked := false
	for _, name := range dict.Names() {
		m, _ := dict.Get(name)
		item, ok := m.(httpsfv.Item)
		if !ok {
			return newErr(KindMalformed, "", nil, "Content-Digest member %q is not an item", name)
		}
		got, ok := item.Value.([]byte)
		if !ok {
			return newErr(KindMalformed, "", nil, "Content-Digest member %q is not a byte sequence", name)
		}
		var sum []byte
		switch name {
		case "sha-256":
			s := sha256.Sum256(body)
			sum = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			sum = s[:]
		default:
			continue
		}
		if subtle.ConstantTimeCompare(got, sum) != 1 {
			return newErr(KindDigestMismatch, "", nil, "Content-Digest %s does not match the body", name)
		}
		checked = true
	}
	if !checked {
		return newErr(KindUnsupported, "", nil, "no sha-256 or sha-512 Content-Digest member")
	}
	return nil
}
