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
	acceptSignatureOnce  sync.Once
	acceptSignatureValue string
)

// AcceptSignature is the Accept-Signature field (RFC 9421 section 5.1) an inbox sends
// with a 401, so that a double-knocking peer can retry with a signature we accept. It
// is a Dictionary with one member per algorithm the Verifier checks (Ed25519, rsa-v1_5-sha256, rsa-pss-sha512, ecdsa-p256-sha256), each
// listing AcceptSignatureComponents(true) with the created parameter (the Verifier
// requires it) and the alg; a signer fulfils the member its key can produce. No keyid
// is named: any key its actor document publishes will do.
func AcceptSignature() string {
	acceptSignatureOnce.Do(func() {
		d := httpsfv.NewDictionary()
		for i, alg := range acceptedRFC9421Algs {
			il := httpsfv.InnerList{Params: httpsfv.NewParams()}
			for _, c := range AcceptSignatureComponents(true) {
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
		acceptSignatureValue = v
	})
	return acceptSignatureValue
}
