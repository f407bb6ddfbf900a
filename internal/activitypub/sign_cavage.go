package activitypub

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cavage algorithm names as they appear in the algorithm parameter.
const (
	AlgRSASHA256 = "rsa-sha256" // what Mastodon sends and every peer accepts
	AlgRSASHA512 = "rsa-sha512" // sent by some go-fed based servers
	AlgHS2019    = "hs2019"     // "derive from the key": RSA (SHA-256) or Ed25519
	AlgEd25519   = "ed25519"    // GoToSocial's name for Ed25519 in cavage
)

// maxSignatureHeader bounds every signature header we parse: real ones are below 1 KiB.
const maxSignatureHeader = 8 << 10

// CavageSignature is a parsed draft-cavage-http-signatures-12 Signature header. Created
// and Expires are Unix seconds and zero when absent.
type CavageSignature struct {
	KeyID     string
	Algorithm string
	Headers   []string // lower-cased, in signing order
	Signature []byte
	Created   int64
	Expires   int64
	// headersSet records whether the headers parameter was present, so that String
	// reproduces a header exactly as the draft's examples print it.
	headersSet bool
}

// defaultCavageHeaders is what Mastodon assumes when the headers parameter is absent.
func defaultCavageHeaders(alg string) []string {
	if alg == AlgHS2019 {
		return []string{"(created)"}
	}
	return []string{"date"}
}

// ParseCavageSignature parses the value of a Signature header (or of an Authorization
// header after the "Signature " scheme). It is strict about structure and bounded in
// size, because its input comes from any host on the Internet.
func ParseCavageSignature(h string) (*CavageSignature, error) {
	if len(h) > maxSignatureHeader {
		return nil, newErr(KindTooLarge, "", nil, "Signature header of %d bytes", len(h))
	}
	// Every parameter of the header (key IDs, algorithm names, header names, base64) is
	// printable ASCII; anything else is refused before it can be case-folded into
	// multi-byte replacement characters.
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return nil, newErr(KindMalformed, "", nil, "Signature header holds a non-ASCII or control byte at offset %d", i)
		}
	}
	params := map[string]string{}
	s := h
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, newErr(KindMalformed, "", nil, "Signature parameter without '='")
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, newErr(KindMalformed, "", nil, "unterminated quoted string in Signature")
			}
			val, s = s[1:1+end], s[2+end:]
			s = strings.TrimLeft(s, " \t")
			if s != "" && s[0] != ',' {
				return nil, newErr(KindMalformed, "", nil, "garbage after quoted Signature parameter %q", name)
			}
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
			if strings.ContainsAny(val, "\" \t") {
				return nil, newErr(KindMalformed, "", nil, "unquoted Signature parameter %q holds a quote or space", name)
			}
		}
		if _, dup := params[name]; dup {
			return nil, newErr(KindMalformed, "", nil, "duplicate Signature parameter %q", name)
		}
		params[name] = val
	}
	sig := &CavageSignature{KeyID: params["keyid"], Algorithm: strings.ToLower(params["algorithm"])}
	if sig.KeyID == "" {
		return nil, newErr(KindMalformed, "", nil, "Signature without keyId")
	}
	raw, ok := params["signature"]
	if !ok || raw == "" {
		return nil, newErr(KindMalformed, "", nil, "Signature without signature")
	}
	var err error
	if sig.Signature, err = base64.StdEncoding.DecodeString(raw); err != nil {
		if sig.Signature, err = base64.RawStdEncoding.DecodeString(raw); err != nil {
			return nil, newErr(KindMalformed, "", err, "signature is not base64")
		}
	}
	if hs, ok := params["headers"]; ok {
		sig.headersSet = true
		sig.Headers = strings.Fields(strings.ToLower(hs))
		if len(sig.Headers) == 0 {
			return nil, newErr(KindMalformed, "", nil, "empty headers parameter")
		}
	} else {
		sig.Headers = defaultCavageHeaders(sig.Algorithm)
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"created", &sig.Created}, {"expires", &sig.Expires}} {
		if v, ok := params[p.name]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return nil, newErr(KindMalformed, "", err, "bad %s parameter", p.name)
			}
			*p.dst = n
		}
	}
	return sig, nil
}

// String renders the header value in the canonical order keyId, algorithm, created,
// expires, headers, signature, which is the order of the draft's examples.
func (s *CavageSignature) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, `keyId="%s",algorithm="%s"`, s.KeyID, s.Algorithm)
	if s.Created != 0 {
		fmt.Fprintf(&b, ",created=%d", s.Created)
	}
	if s.Expires != 0 {
		fmt.Fprintf(&b, ",expires=%d", s.Expires)
	}
	if s.headersSet {
		fmt.Fprintf(&b, `,headers="%s"`, strings.Join(s.Headers, " "))
	}
	fmt.Fprintf(&b, `,signature="%s"`, base64.StdEncoding.EncodeToString(s.Signature))
	return b.String()
}

// requestTarget is the "(request-target)" value: lower-case method, space, path and query
// as sent on the wire.
func requestTarget(req *http.Request) string {
	uri := req.RequestURI
	if uri == "" || uri[0] != '/' {
		uri = req.URL.RequestURI()
	}
	return strings.ToLower(req.Method) + " " + uri
}

// requestHost is the Host the request was (or will be) sent with.
func requestHost(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

// headerValue joins the values of a header field as both signature schemes canonicalise
// them: each value trimmed, several values joined with ", ".
func headerValue(h http.Header, name string) (string, bool) {
	vals, ok := h[http.CanonicalHeaderKey(name)]
	if !ok || len(vals) == 0 {
		return "", false
	}
	if len(vals) == 1 {
		return strings.TrimSpace(vals[0]), true
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = strings.TrimSpace(v)
	}
	return strings.Join(parts, ", "), true
}

// CavageSigningString builds the string a cavage signature covers, for the given lower-case
// header list. A listed header that is absent is an error, as the draft requires.
func CavageSigningString(req *http.Request, headers []string, created, expires int64) (string, error) {
	var b strings.Builder
	for i, h := range headers {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(h)
		b.WriteString(": ")
		switch h {
		case "(request-target)":
			b.WriteString(requestTarget(req))
		case "(created)":
			if created == 0 {
				return "", newErr(KindMalformed, "", nil, "(created) signed without a created parameter")
			}
			b.WriteString(strconv.FormatInt(created, 10))
		case "(expires)":
			if expires == 0 {
				return "", newErr(KindMalformed, "", nil, "(expires) signed without an expires parameter")
			}
			b.WriteString(strconv.FormatInt(expires, 10))
		case "host":
			b.WriteString(requestHost(req))
		default:
			v, ok := headerValue(req.Header, h)
			if !ok {
				return "", newErr(KindMalformed, "", nil, "signed header %q is missing", h)
			}
			b.WriteString(v)
		}
	}
	return b.String(), nil
}

// CavageOptions tunes SignCavage; the zero value signs the way Mastodon does.
type CavageOptions struct {
	// Algorithm is the algorithm parameter to send; empty means rsa-sha256 for RSA keys
	// (what every peer accepts) and hs2019 for Ed25519 keys.
	Algorithm string
	// Headers to sign; empty means "(request-target) host date" plus "digest" when the
	// request has a body, Mastodon's own choice.
	Headers []string
	// Now is the signing time for Date and (created); zero means time.Now.
	Now time.Time
	// Created adds the created parameter (needed when signing "(created)").
	Created bool
}

// SignCavage signs req with a draft-cavage Signature header. It sets Date and, for a
// non-nil body, Digest first when they are absent, so the caller only builds the request.
func SignCavage(req *http.Request, body []byte, key crypto.Signer, keyID string, opt CavageOptions) error {
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	if req.Header.Get("Date") == "" {
		req.Header.Set("Date", now.UTC().Format(http.TimeFormat))
	}
	if body != nil && req.Header.Get("Digest") == "" {
		req.Header.Set("Digest", DigestSHA256(body))
	}
	alg := opt.Algorithm
	if alg == "" {
		alg = AlgRSASHA256
		if _, ok := key.(ed25519.PrivateKey); ok {
			alg = AlgHS2019
		}
	}
	headers := opt.Headers
	if len(headers) == 0 {
		headers = []string{"(request-target)", "host", "date"}
		if body != nil {
			headers = append(headers, "digest")
		}
	}
	sig := &CavageSignature{KeyID: keyID, Algorithm: alg, Headers: headers}
	def := defaultCavageHeaders(alg)
	sig.headersSet = strings.Join(headers, " ") != strings.Join(def, " ")
	if opt.Created {
		sig.Created = now.Unix()
	}
	ss, err := CavageSigningString(req, headers, sig.Created, sig.Expires)
	if err != nil {
		return err
	}
	if sig.Signature, err = cavageSign(alg, key, []byte(ss)); err != nil {
		return err
	}
	req.Header.Set("Signature", sig.String())
	return nil
}

func cavageSign(alg string, key crypto.Signer, msg []byte) ([]byte, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg == AlgRSASHA512 {
			h := sha512.Sum512(msg)
			return rsa.SignPKCS1v15(nil, k, crypto.SHA512, h[:])
		}
		if alg != AlgRSASHA256 && alg != AlgHS2019 {
			return nil, newErr(KindUnsupported, "", nil, "algorithm %q for an RSA key", alg)
		}
		h := sha256.Sum256(msg)
		return rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	case ed25519.PrivateKey:
		if alg != AlgHS2019 && alg != AlgEd25519 {
			return nil, newErr(KindUnsupported, "", nil, "algorithm %q for an Ed25519 key", alg)
		}
		return ed25519.Sign(k, msg), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(msg)
		return ecdsa.SignASN1(rand.Reader, k, h[:])
	}
	return nil, newErr(KindUnsupported, "", nil, "key type %T", key)
}

// verifyCavage checks sig over msg with pub. hs2019 and a missing algorithm derive the
// scheme from the key, trying what real peers send for that key type (GoToSocial tries
// RSA-SHA256, RSA-SHA512 and Ed25519 the same way).
func verifyCavage(alg string, pub crypto.PublicKey, msg, sig []byte) error {
	// Built only on a refusal: formatting it for every verified POST was 3 % of the
	// inbox's CPU in make run's profiles (issue 17).
	bad := func() error { return newErr(KindBadSignature, "", nil, "%s signature does not verify", alg) }
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case AlgRSASHA256, AlgHS2019, "":
			h := sha256.Sum256(msg)
			if verifyRSASHA256(k, h[:], sig) == nil {
				return nil
			}
			if alg == AlgRSASHA256 {
				return bad()
			}
			fallthrough
		case AlgRSASHA512:
			h := sha512.Sum512(msg)
			if rsa.VerifyPKCS1v15(k, crypto.SHA512, h[:], sig) == nil {
				return nil
			}
			if alg == AlgHS2019 && rsa.VerifyPSS(k, crypto.SHA512, h[:], sig, nil) == nil {
				return nil
			}
			return bad()
		}
	case ed25519.PublicKey:
		if alg == AlgHS2019 || alg == AlgEd25519 || alg == "" {
			if ed25519.Verify(k, msg, sig) {
				return nil
			}
			return bad()
		}
	case *ecdsa.PublicKey:
		if alg == AlgHS2019 || alg == "" || alg == "ecdsa-sha256" {
			h := sha256.Sum256(msg)
			if ecdsa.VerifyASN1(k, h[:], sig) {
				return nil
			}
			return bad()
		}
	default:
		return newErr(KindUnsupported, "", nil, "key type %T", pub)
	}
	return newErr(KindBadSignature, "", nil, "algorithm %q does not match the key type %T", alg, pub)
}
