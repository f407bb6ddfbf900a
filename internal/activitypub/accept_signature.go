package activitypub

import (
	"sync"

	"github.com/dunglas/httpsfv"
)

// acceptedRFC9421Algs are the RFC 9421 algorithms the Verifier checks against a
// peer's published key, in the order the inbox advertises them: Ed25519 first (small,
// fast, what Fedify 2 and GoToSocial prefer), then the RSA pair every Mastodon-era key
// can produce, then ECDSA P-256. hmac-sha256 needs a shared secret, which peers do not
// have, so it is not advertised.
var acceptedRFC9421Algs = []string{AlgEd25519RFC, AlgRSAv15SHA256, AlgRSAPSSSHA512, AlgECDSAP256SHA256}

// AcceptSignatureComponents returns the components the inbox asks a peer to cover: the
// Verifier's requirements ("@method", "@target-uri", and "content-digest" for a request
// with a body) plus "@authority", which Fedify and Mastodon cover anyway.
func AcceptSignatureComponents(hasBody bool) []string {
	c := []string{"@method", "@target-uri", "@authority"}
	if hasBody {
		c = append(c, "content-digest")
	}
	return c
}

var (
	acceptSignatureOnce            sync.Once
	acceptSignatureValue, fetchSig string
)

// AcceptSignature is the Accept-Signature field (RFC 9421 section 5.1) an inbox sends
// with a 401, so that a double-knocking peer can retry with a signature we accept. It
// is a Dictionary with one member per algorithm the Verifier checks (Ed25519, rsa-v1_5-sha256, rsa-pss-sha512, ecdsa-p256-sha256), each
// listing AcceptSignatureComponents(true) with the created parameter (the Verifier
// requires it) and the alg; a signer fulfils the member its key can produce. No keyid
// is named: any key its actor document publishes will do.
func AcceptSignature() string {
	acceptSignatureOnce.Do(func() {
		acceptSignatureValue = buildAcceptSignature(true)
		fetchSig = buildAcceptSignature(false)
	})
	return acceptSignatureValue
}

// AcceptSignatureFetch is AcceptSignature for a GET (authorized fetch): the same members
// without "content-digest", which a request without a body cannot cover.
func AcceptSignatureFetch() string {
	AcceptSignature()
	return fetchSig
}

func buildAcceptSignature(hasBody bool) string {
	d := httpsfv.NewDictionary()
	for i, alg := range acceptedRFC9421Algs {
		il := httpsfv.InnerList{Params: httpsfv.NewParams()}
		for _, c := range AcceptSignatureComponents(hasBody) {
			il.Items = append(il.Items, httpsfv.NewItem(c))
		}
		il.Params.Add("created", true)
		il.Params.Add("alg", alg)
		d.Add("sig"+string(rune('1'+i)), il)
	}
	v, err := httpsfv.Marshal(d)
	if err != nil {
		panic("activitypub: Accept-Signature: " + err.Error()) // constant input
	}
	return v
}

// challenge is one member of a peer's Accept-Signature that we can fulfil: the
// components it asks for and the parameters our signature must carry (RFC 9421 section
// 5.1). Fedify 2 asks for components, created and a one-time nonce, without alg.
type challenge struct {
	Label      string
	Components []string
	Nonce      string
	Alg        string // empty when the peer leaves it to the key
	Profile    SignatureProfile
}

// parseChallenge picks the member of an Accept-Signature value that our keys can
// fulfil: an ed25519 member when hasEd25519, else one asking for rsa-v1_5-sha256 or for
// no particular algorithm. A member naming a keyid other than one of ours is skipped.
// ok is false when nothing can be fulfilled (or the value does not parse).
func parseChallenge(value string, keyIDs []string, hasEd25519 bool) (challenge, bool) {
	d, err := httpsfv.UnmarshalDictionary([]string{value})
	if err != nil {
		return challenge{}, false
	}
	var best challenge
	found := false
	for _, label := range d.Names() {
		m, _ := d.Get(label)
		il, ok := m.(httpsfv.InnerList)
		if !ok {
			continue
		}
		c := challenge{Label: label}
		usable := true
		for _, it := range il.Items {
			s, ok := it.Value.(string)
			if !ok || (it.Params != nil && len(it.Params.Names()) > 0) {
				usable = false // parameterised components (;sf, ;key, ;req) are not produced
				break
			}
			c.Components = append(c.Components, s)
		}
		if il.Params != nil {
			for _, p := range il.Params.Names() {
				v, _ := il.Params.Get(p)
				switch p {
				case "alg":
					c.Alg, _ = v.(string)
				case "nonce":
					c.Nonce, _ = v.(string)
				case "keyid":
					k, _ := v.(string)
					if !containsString(keyIDs, k) {
						usable = false
					}
				case "tag":
					usable = false // an application tag we know nothing about
				}
			}
		}
		switch {
		case !usable:
			continue
		case c.Alg == AlgEd25519RFC && hasEd25519:
			c.Profile = ProfileRFC9421Ed25519
			return c, true // the best we can offer
		case c.Alg == "" || c.Alg == AlgRSAv15SHA256:
			c.Profile = ProfileRFC9421RSA
			if !found {
				best, found = c, true
			}
		}
	}
	return best, found
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
