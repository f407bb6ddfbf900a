package activitypub

import (
	"bytes"
	"crypto"
	"encoding/json"
	"net/url"
	"strings"
)

// PublicKey is the Mastodon-style (security/v1) key of an actor: the key cavage and RSA
// RFC 9421 signatures are checked with. Owner must be the actor's id.
type PublicKey struct {
	ID           string `json:"id,omitempty"`
	Type         string `json:"type,omitempty"`
	Owner        string `json:"owner,omitempty"`
	PublicKeyPem string `json:"publicKeyPem,omitempty"`
}

// PublicKeys is the publicKey property: one object, an IRI or, from a few servers, an
// array. One key is written as an object, as Mastodon expects.
type PublicKeys []PublicKey

// Find returns the key with the given id.
func (ks PublicKeys) Find(id string) (PublicKey, bool) {
	for _, k := range ks {
		if k.ID == id {
			return k, true
		}
	}
	return PublicKey{}, false
}

// MarshalJSON writes one key as an object and several as an array.
func (ks PublicKeys) MarshalJSON() ([]byte, error) {
	if len(ks) == 1 {
		return json.Marshal(ks[0])
	}
	return json.Marshal([]PublicKey(ks))
}

// UnmarshalJSON accepts an object, an IRI (kept as a key with only an id) or an array.
func (ks *PublicKeys) UnmarshalJSON(b []byte) error {
	*ks = nil
	return decodeOneOrMany(b, func(raw []byte) error {
		var k PublicKey
		if raw[0] == '"' {
			if err := json.Unmarshal(raw, &k.ID); err != nil {
				return err
			}
		} else if err := json.Unmarshal(raw, &k); err != nil {
			return err
		}
		*ks = append(*ks, k)
		return nil
	})
}

// Multikey is an FEP-521a verification method: how we publish our Ed25519 key and read
// peers' Ed25519 keys for RFC 9421 ed25519 signatures.
type Multikey struct {
	ID                 string `json:"id,omitempty"`
	Type               string `json:"type,omitempty"`
	Controller         string `json:"controller,omitempty"`
	PublicKeyMultibase string `json:"publicKeyMultibase,omitempty"`
}

// Multikeys is the assertionMethod property, always written as an array (FEP-521a).
type Multikeys []Multikey

// Find returns the verification method with the given id.
func (ks Multikeys) Find(id string) (Multikey, bool) {
	for _, k := range ks {
		if k.ID == id {
			return k, true
		}
	}
	return Multikey{}, false
}

// UnmarshalJSON accepts an object, an IRI or an array of either.
func (ks *Multikeys) UnmarshalJSON(b []byte) error {
	*ks = nil
	return decodeOneOrMany(b, func(raw []byte) error {
		var k Multikey
		if raw[0] == '"' {
			if err := json.Unmarshal(raw, &k.ID); err != nil {
				return err
			}
		} else if err := json.Unmarshal(raw, &k); err != nil {
			return err
		}
		*ks = append(*ks, k)
		return nil
	})
}

// decodeOneOrMany calls fn for a single JSON value or for each element of an array,
// skipping nulls.
func decodeOneOrMany(b []byte, fn func([]byte) error) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] != '[' {
		return fn(b)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return err
	}
	for _, r := range raws {
		r = bytes.TrimSpace(r)
		if len(r) == 0 || string(r) == "null" || r[0] == '[' {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Endpoints is the actor's endpoints object; sharedInbox is what delivery uses.
type Endpoints struct {
	SharedInbox                string `json:"sharedInbox,omitempty"`
	OAuthAuthorizationEndpoint string `json:"oauthAuthorizationEndpoint,omitempty"`
	OAuthTokenEndpoint         string `json:"oauthTokenEndpoint,omitempty"`
	ProxyURL                   string `json:"proxyUrl,omitempty"`
}

// UnmarshalJSON tolerates endpoints given as an IRI (allowed by AS2) by ignoring it.
func (e *Endpoints) UnmarshalJSON(b []byte) error {
	*e = Endpoints{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	type plain Endpoints
	return json.Unmarshal(b, (*plain)(e))
}

// KeyByID finds the key with id among the actor's publicKey and assertionMethod entries
// whose owner or controller is the actor, and parses it. It is how the key cache proves
// that a key belongs to the actor that claims it.
func (o *Object) KeyByID(id string) (crypto.PublicKey, bool, error) {
	if k, ok := o.PublicKey.Find(id); ok && k.PublicKeyPem != "" {
		if k.Owner != "" && k.Owner != o.ID {
			return nil, true, newErr(KindWrongOwner, hostOf(id), nil, "key %s names owner %s, not %s", id, k.Owner, o.ID)
		}
		pub, err := ParsePublicKeyPEM(k.PublicKeyPem)
		return pub, true, err
	}
	if k, ok := o.AssertionMethod.Find(id); ok && k.PublicKeyMultibase != "" {
		if k.Controller != "" && k.Controller != o.ID {
			return nil, true, newErr(KindWrongOwner, hostOf(id), nil, "key %s names controller %s, not %s", id, k.Controller, o.ID)
		}
		pub, err := DecodeMultibaseKey(k.PublicKeyMultibase)
		return pub, true, err
	}
	return nil, false, nil
}

// ListsKey reports whether the actor lists a key with this id (in publicKey or
// assertionMethod), regardless of whether it is embedded.
func (o *Object) ListsKey(id string) bool {
	_, a := o.PublicKey.Find(id)
	_, b := o.AssertionMethod.Find(id)
	return a || b
}

// MastodonActorTypes are the only actor types Mastodon follows or accepts activities from
// (ActivityPub::FetchRemoteAccountService, SUPPORTED_TYPES).
var MastodonActorTypes = []string{"Application", "Group", "Organization", "Person", "Service"}

// CheckMastodonActor reads an actor document as Mastodon's remote account fetch does and
// returns why Mastodon would refuse it, or nil. Mastodon needs a supported type (or an
// array containing one, which is how a ForgeFed Repository stays followable), an id on
// the host it was fetched from, an inbox, a preferredUsername, and a publicKey it owns.
// fetchedFrom is the URL the document was served at ("" to skip that check).
func CheckMastodonActor(doc []byte, fetchedFrom string) error {
	o, err := DecodeObject(doc)
	if err != nil {
		return err
	}
	host := hostOf(o.ID)
	switch {
	case !o.Type.HasAny(MastodonActorTypes...):
		return newErr(KindUnsupported, host, nil, "Unexpected object type for actor %v", []string(o.Type))
	case o.ID == "":
		return newErr(KindMalformed, host, nil, "actor without id")
	case fetchedFrom != "" && !sameHost(o.ID, fetchedFrom):
		return newErr(KindWrongOwner, host, nil, "actor id %s is not on the host it was fetched from (%s)", o.ID, fetchedFrom)
	case o.Inbox == "":
		return newErr(KindMalformed, host, nil, "actor without inbox")
	case strings.TrimSpace(o.PreferredUsername) == "":
		return newErr(KindMalformed, host, nil, "actor without preferredUsername")
	case len(o.PublicKey) == 0 || o.PublicKey[0].PublicKeyPem == "":
		return newErr(KindUnknownKey, host, nil, "actor without publicKey (its activities could not be verified)")
	case o.PublicKey[0].Owner != o.ID:
		return newErr(KindWrongOwner, host, nil, "publicKey owner %q is not the actor", o.PublicKey[0].Owner)
	}
	if _, err := ParsePublicKeyPEM(o.PublicKey[0].PublicKeyPem); err != nil {
		return withHost(err, host)
	}
	return nil
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Host != "" && strings.EqualFold(ua.Host, ub.Host)
}
