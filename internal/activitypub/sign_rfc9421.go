package activitypub

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"
)

// RFC 9421 algorithm names (IANA HTTP Signature Algorithms registry).
const (
	AlgRSAPSSSHA512    = "rsa-pss-sha512"
	AlgRSAv15SHA256    = "rsa-v1_5-sha256"
	AlgECDSAP256SHA256 = "ecdsa-p256-sha256"
	AlgEd25519RFC      = "ed25519"
	AlgHMACSHA256      = "hmac-sha256"
)

// RFC9421Signature is one labelled signature from the Signature-Input and Signature
// fields. Params keeps the parsed inner list so that "@signature-params" is rebuilt from
// exactly the parameters the sender listed, in their order.
type RFC9421Signature struct {
	Label      string
	Components []httpsfv.Item // component identifiers: string values with parameters
	Params     httpsfv.InnerList
	Created    int64 // Unix seconds; 0 if absent
	Expires    int64
	KeyID      string
	Alg        string
	Nonce      string
	Tag        string
	Signature  []byte
}

// ParseRFC9421 parses the Signature-Input and Signature field values (each the comma
// joined field lines) into signatures in Signature-Input order. A label present in one
// field but not the other is an error: an unverifiable signature is not ignored silently.
func ParseRFC9421(sigInput, signature string) ([]*RFC9421Signature, error) {
	if len(sigInput) > maxSignatureHeader || len(signature) > maxSignatureHeader {
		return nil, newErr(KindTooLarge, "", nil, "signature fields over %d bytes", maxSignatureHeader)
	}
	in, err := httpsfv.UnmarshalDictionary([]string{sigInput})
	if err != nil {
		return nil, newErr(KindMalformed, "", err, "Signature-Input")
	}
	sd, err := httpsfv.UnmarshalDictionary([]string{signature})
	if err != nil {
		return nil, newErr(KindMalformed, "", err, "Signature")
	}
	var out []*RFC9421Signature
	for _, label := range in.Names() {
		m, _ := in.Get(label)
		il, ok := m.(httpsfv.InnerList)
		if !ok {
			return nil, newErr(KindMalformed, "", nil, "Signature-Input %q is not an inner list", label)
		}
		s := &RFC9421Signature{Label: label, Params: il}
		seen := map[string]bool{}
		for _, it := range il.Items {
			name, ok := it.Value.(string)
			if !ok {
				return nil, newErr(KindMalformed, "", nil, "component identifier is not a string")
			}
			id, _ := httpsfv.Marshal(it)
			if seen[id] {
				return nil, newErr(KindMalformed, "", nil, "component %s listed twice", id)
			}
			seen[id] = true
			if name != strings.ToLower(name) {
				return nil, newErr(KindMalformed, "", nil, "component %q is not lower case", name)
			}
			s.Components = append(s.Components, it)
		}
		if il.Params != nil {
			for _, p := range il.Params.Names() {
				v, _ := il.Params.Get(p)
				var ok bool
				switch p {
				case "created":
					s.Created, ok = v.(int64)
				case "expires":
					s.Expires, ok = v.(int64)
				case "keyid":
					s.KeyID, ok = v.(string)
				case "alg":
					s.Alg, ok = v.(string)
				case "nonce":
					s.Nonce, ok = v.(string)
				case "tag":
					s.Tag, ok = v.(string)
				default:
					ok = true
				}
				if !ok {
					return nil, newErr(KindMalformed, "", nil, "signature parameter %q has the wrong type", p)
				}
			}
		}
		sm, ok := sd.Get(label)
		if !ok {
			return nil, newErr(KindMalformed, "", nil, "no Signature for label %q", label)
		}
		item, ok := sm.(httpsfv.Item)
		if !ok {
			return nil, newErr(KindMalformed, "", nil, "Signature %q is not an item", label)
		}
		if s.Signature, ok = item.Value.([]byte); !ok {
			return nil, newErr(KindMalformed, "", nil, "Signature %q is not a byte sequence", label)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, newErr(KindMalformed, "", nil, "Signature-Input without signatures")
	}
	if len(sd.Names()) != len(out) {
		return nil, newErr(KindMalformed, "", nil, "Signature has labels that Signature-Input lacks")
	}
	return out, nil
}

// HasComponent reports whether the signature covers the named component identifier
// (without parameters), for policy checks such as Mastodon's required components.
func (s *RFC9421Signature) HasComponent(name string) bool {
	for _, c := range s.Components {
		if c.Value == name {
			return true
		}
	}
	return false
}

// componentValue derives one component's value (RFC 9421 section 2).
func componentValue(m Message, c httpsfv.Item) ([]string, error) {
	name := c.Value.(string)
	if c.Params != nil {
		for _, p := range c.Params.Names() {
			if p != "name" || name != "@query-param" {
				return nil, newErr(KindUnsupported, "", nil, "component parameter %q on %q", p, name)
			}
		}
	}
	req := m.Request
	if req == nil && name != "@status" && strings.HasPrefix(name, "@") {
		return nil, newErr(KindMalformed, "", nil, "derived component %q without a request", name)
	}
	switch name {
	case "@method":
		return []string{req.Method}, nil
	case "@target-uri":
		return []string{m.targetURI()}, nil
	case "@authority":
		return []string{m.authority()}, nil
	case "@scheme":
		u, _ := url.Parse(m.targetURI())
		return []string{strings.ToLower(u.Scheme)}, nil
	case "@request-target":
		return []string{strings.SplitN(requestTarget(req), " ", 2)[1]}, nil
	case "@path":
		p := req.URL.EscapedPath()
		if p == "" {
			p = "/"
		}
		return []string{p}, nil
	case "@query":
		return []string{"?" + req.URL.RawQuery}, nil
	case "@query-param":
		v, ok := c.Params.Get("name")
		want, isStr := v.(string)
		if !ok || !isStr {
			return nil, newErr(KindMalformed, "", nil, "@query-param without a name")
		}
		var vals []string
		for _, pair := range strings.Split(req.URL.RawQuery, "&") {
			k, val, _ := strings.Cut(pair, "=")
			uk, err1 := url.QueryUnescape(k)
			uv, err2 := url.QueryUnescape(val)
			if err1 != nil || err2 != nil {
				continue
			}
			if uk == want {
				vals = append(vals, url.QueryEscape(uv))
			}
		}
		if len(vals) == 0 {
			return nil, newErr(KindMalformed, "", nil, "query parameter %q is missing", want)
		}
		return vals, nil
	case "@status":
		if m.Status == 0 {
			return nil, newErr(KindMalformed, "", nil, "@status on a request")
		}
		return []string{strconv.Itoa(m.Status)}, nil
	}
	if strings.HasPrefix(name, "@") {
		return nil, newErr(KindUnsupported, "", nil, "derived component %q", name)
	}
	if name == "host" && m.Header == nil && req != nil {
		// Go's server moves the Host field out of req.Header into req.Host, and its
		// client writes req.Host (or URL.Host) and ignores Header["Host"]: the field
		// on the wire is requestHost, as the cavage signing string already has it.
		// Fedify 2 covers "host" in its first RFC 9421 knock.
		if h := requestHost(req); h != "" {
			return []string{h}, nil
		}
	}
	v, ok := headerValue(m.header(), name)
	if !ok {
		return nil, newErr(KindMalformed, "", nil, "covered header %q is missing", name)
	}
	return []string{v}, nil
}

// SignatureBase builds the signature base (RFC 9421 section 2.5) of s over m.
func (s *RFC9421Signature) SignatureBase(m Message) (string, error) {
	var b strings.Builder
	for _, c := range s.Components {
		id, err := httpsfv.Marshal(c)
		if err != nil {
			return "", newErr(KindMalformed, "", err, "component identifier")
		}
		vals, err := componentValue(m, c)
		if err != nil {
			return "", err
		}
		for _, v := range vals {
			b.WriteString(id)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	params, err := httpsfv.Marshal(s.Params)
	if err != nil {
		return "", newErr(KindMalformed, "", err, "signature parameters")
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(params)
	return b.String(), nil
}

// RFC9421Options describes a signature to create. Parameters are written in the order
// created, expires, keyid, alg, nonce, tag, which reproduces RFC 9421's examples.
type RFC9421Options struct {
	Label      string   // default "sig1"
	Components []string // identifiers as in Signature-Input, e.g. `"@query-param";name="Pet"` or `@method`
	Created    time.Time
	Expires    time.Time
	KeyID      string
	Alg        string // required: one of the Alg* RFC 9421 names
	IncludeAlg bool   // write the alg parameter (RFC 9421 lets verifiers infer it from the key)
	Nonce, Tag string
}

// DefaultRFC9421Components returns what Mastodon requires: "@method" and "@target-uri",
// plus "content-digest" for requests with a body.
func DefaultRFC9421Components(hasBody bool) []string {
	c := []string{"@method", "@target-uri"}
	if hasBody {
		c = append(c, "content-digest")
	}
	return c
}

// SignRFC9421 signs m with key (a crypto.Signer, or []byte for hmac-sha256) and adds the
// Signature-Input and Signature fields to m's headers. For a request with a body it sets
// Content-Digest (sha-256) first when absent.
func SignRFC9421(m Message, body []byte, key any, opt RFC9421Options) error {
	h := m.header()
	if body != nil && h.Get("Content-Digest") == "" {
		h.Set("Content-Digest", ContentDigest("sha-256", body))
	}
	if opt.Label == "" {
		opt.Label = "sig1"
	}
	if opt.Created.IsZero() {
		opt.Created = time.Now()
	}
	comps := opt.Components
	if comps == nil {
		comps = DefaultRFC9421Components(body != nil)
	}
	s := &RFC9421Signature{Label: opt.Label, KeyID: opt.KeyID, Alg: opt.Alg, Created: opt.Created.Unix()}
	s.Params.Params = httpsfv.NewParams()
	for _, c := range comps {
		if !strings.HasPrefix(c, `"`) {
			c = strconv.Quote(c)
		}
		it, err := httpsfv.UnmarshalItem([]string{c})
		if err != nil {
			return newErr(KindMalformed, "", err, "component %s", c)
		}
		if _, ok := it.Value.(string); !ok {
			return newErr(KindMalformed, "", nil, "component %s is not a string", c)
		}
		s.Components = append(s.Components, it)
		s.Params.Items = append(s.Params.Items, it)
	}
	p := s.Params.Params
	p.Add("created", s.Created)
	if !opt.Expires.IsZero() {
		s.Expires = opt.Expires.Unix()
		p.Add("expires", s.Expires)
	}
	if opt.KeyID != "" {
		p.Add("keyid", opt.KeyID)
	}
	if opt.IncludeAlg {
		p.Add("alg", opt.Alg)
	}
	if opt.Nonce != "" {
		p.Add("nonce", opt.Nonce)
	}
	if opt.Tag != "" {
		p.Add("tag", opt.Tag)
	}
	base, err := s.SignatureBase(m)
	if err != nil {
		return err
	}
	if s.Signature, err = rfc9421Sign(opt.Alg, key, []byte(base)); err != nil {
		return err
	}
	in := httpsfv.NewDictionary()
	in.Add(s.Label, s.Params)
	sd := httpsfv.NewDictionary()
	sd.Add(s.Label, httpsfv.NewItem(s.Signature))
	inStr, err := httpsfv.Marshal(in)
	if err != nil {
		return err
	}
	sigStr, err := httpsfv.Marshal(sd)
	if err != nil {
		return err
	}
	h.Set("Signature-Input", inStr)
	h.Set("Signature", sigStr)
	return nil
}

func rfc9421Sign(alg string, key any, base []byte) ([]byte, error) {
	switch alg {
	case AlgHMACSHA256:
		secret, ok := key.([]byte)
		if !ok {
			return nil, newErr(KindUnsupported, "", nil, "hmac-sha256 needs a []byte secret")
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(base)
		return mac.Sum(nil), nil
	case AlgEd25519RFC:
		k, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, newErr(KindUnsupported, "", nil, "ed25519 needs an Ed25519 key, not %T", key)
		}
		return ed25519.Sign(k, base), nil
	case AlgRSAv15SHA256, AlgRSAPSSSHA512:
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, newErr(KindUnsupported, "", nil, "%s needs an RSA key, not %T", alg, key)
		}
		if alg == AlgRSAv15SHA256 {
			h := sha256.Sum256(base)
			return rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
		}
		h := sha512.Sum512(base)
		return rsa.SignPSS(rand.Reader, k, crypto.SHA512, h[:], &rsa.PSSOptions{SaltLength: 64})
	case AlgECDSAP256SHA256:
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k.Curve != elliptic.P256() {
			return nil, newErr(KindUnsupported, "", nil, "ecdsa-p256-sha256 needs a P-256 key")
		}
		h := sha256.Sum256(base)
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			return nil, err
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	}
	return nil, newErr(KindUnsupported, "", nil, "RFC 9421 algorithm %q", alg)
}

// verifyRFC9421 checks sig over base with key. With no alg parameter the algorithm is
// derived from the key type; for RSA both registered RSA algorithms are tried.
func verifyRFC9421(alg string, key any, base, sig []byte) error {
	bad := func() error { return newErr(KindBadSignature, "", nil, "RFC 9421 signature does not verify") } // only on a refusal
	switch k := key.(type) {
	case []byte:
		if alg != "" && alg != AlgHMACSHA256 {
			break
		}
		mac := hmac.New(sha256.New, k)
		mac.Write(base)
		if hmac.Equal(mac.Sum(nil), sig) {
			return nil
		}
		return bad()
	case ed25519.PublicKey:
		if alg != "" && alg != AlgEd25519RFC {
			break
		}
		if ed25519.Verify(k, base, sig) {
			return nil
		}
		return bad()
	case *rsa.PublicKey:
		if alg == "" || alg == AlgRSAv15SHA256 {
			h := sha256.Sum256(base)
			if verifyRSASHA256(k, h[:], sig) == nil {
				return nil
			}
		}
		if alg == "" || alg == AlgRSAPSSSHA512 {
			h := sha512.Sum512(base)
			if rsa.VerifyPSS(k, crypto.SHA512, h[:], sig, &rsa.PSSOptions{SaltLength: 64}) == nil {
				return nil
			}
		}
		if alg == "" || alg == AlgRSAv15SHA256 || alg == AlgRSAPSSSHA512 {
			return bad()
		}
	case *ecdsa.PublicKey:
		if alg != "" && alg != AlgECDSAP256SHA256 {
			break
		}
		if k.Curve != elliptic.P256() || len(sig) != 64 {
			return bad()
		}
		h := sha256.Sum256(base)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if ecdsa.Verify(k, h[:], r, s) {
			return nil
		}
		return bad()
	default:
		return newErr(KindUnsupported, "", nil, "key type %T", key)
	}
	return newErr(KindBadSignature, "", nil, "algorithm %q does not match the key type %T", alg, key)
}

// marshalItem serialises a component identifier as it appears in Signature-Input.
func marshalItem(it httpsfv.Item) (string, error) { return httpsfv.Marshal(it) }
