package activitypub

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// cryptoSigner is the signing interface of every private key type we use.
type cryptoSigner = crypto.Signer

// rfc9421AlgFor picks the RFC 9421 algorithm for our key: rsa-v1_5-sha256 for RSA (the
// one Mastodon verifies with the publicKey it knows), ed25519 for Ed25519 keys.
func rfc9421AlgFor(k crypto.Signer) (string, error) {
	switch k.(type) {
	case *rsa.PrivateKey:
		return AlgRSAv15SHA256, nil
	case ed25519.PrivateKey:
		return AlgEd25519RFC, nil
	case *ecdsa.PrivateKey:
		return AlgECDSAP256SHA256, nil
	}
	return "", newErr(KindUnsupported, "", nil, "no RFC 9421 algorithm for %T", k)
}

// rfc9421AlgOfPublic names the RFC 9421 algorithm a public key verifies by default.
func rfc9421AlgOfPublic(k crypto.PublicKey) string {
	switch k.(type) {
	case *rsa.PublicKey:
		return AlgRSAv15SHA256
	case ed25519.PublicKey:
		return AlgEd25519RFC
	case *ecdsa.PublicKey:
		return AlgECDSAP256SHA256
	}
	return ""
}

// SetPins installs the platform team's pinned profiles (FederationServer
// spec.signatures.pins): a pinned host is always signed with its profile, never double
// knocked and never relearnt. pins is called for every signed request and must be cheap
// (the server reads its informer cache). nil removes all pins.
func (c *Client) SetPins(pins func(host string) (SignatureProfile, bool)) {
	if pins == nil {
		c.pins.Store(nil)
		return
	}
	c.pins.Store(&pins)
}

func (c *Client) pinned(host string) (SignatureProfile, bool) {
	if f := c.pins.Load(); f != nil {
		return (*f)(host)
	}
	return "", false
}

// ProfileFor reports the profile the next signed request to host will start with, from
// memory only (no store read, no NodeInfo fetch): for logs, tests and status.
func (c *Client) ProfileFor(host string) HostProfile {
	host = strings.ToLower(host)
	if p, ok := c.pinned(host); ok {
		return HostProfile{Host: host, Profile: p, Source: SourcePinned}
	}
	if p, ok, _ := c.profiles.get(host); ok {
		return p
	}
	return HostProfile{Host: host, Profile: ProfileCavage}
}

// SchemeFor reports the signature scheme the next request to host will use.
func (c *Client) SchemeFor(host string) string { return c.ProfileFor(host).Profile.Scheme() }

// ForgetProfile drops what this process remembers of host, so that the next request
// reads the store again (after a pin was removed).
func (c *Client) ForgetProfile(host string) { c.profiles.forget(strings.ToLower(host)) }

// profileFor chooses the profile for a signed request to u: a pin, then what this process
// learnt, then the store, then the peer's NodeInfo (when enabled), else cavage with an
// empty Source (the default, not yet confirmed by a knock). probe=false never fetches
// (the inbox calls it) and leaves the host to be probed by the next request.
func (c *Client) profileFor(ctx context.Context, u *url.URL, probe bool) HostProfile {
	host := strings.ToLower(u.Host)
	if p, ok := c.pinned(host); ok {
		return HostProfile{Host: host, Profile: p, Source: SourcePinned}
	}
	p, ok, probed := c.profiles.get(host)
	if ok {
		return p
	}
	if !probed {
		if probe {
			defer c.profiles.markProbed(host)
		}
		if c.cfg.Profiles != nil {
			sp, found, err := c.cfg.Profiles.LoadSignatureProfile(ctx, host)
			switch {
			case err != nil:
				c.cfg.Log.Error(err, "loading signature profile", "host", host)
			case found && sp.Profile.Valid() && (sp.Source != SourcePinned || c.pins.Load() == nil):
				// A pinned row counts where no live pins are installed (delivery Jobs); the
				// server's own pins are authoritative in the server.
				c.profiles.set(sp)
				return sp
			}
		}
		if probe && c.cfg.NodeInfoProfiles {
			if ni, err := c.fetchNodeInfo(ctx, u.Scheme, u.Host); err == nil {
				if prof, ok := ProfileForSoftware(ni.Software.Name, ni.Software.Version); ok {
					np := HostProfile{Host: host, Profile: prof, Source: SourceNodeInfo, Software: ni.Software.Name + "/" + ni.Software.Version}
					c.learn(ctx, np, HostProfile{})
					return np
				}
			}
		}
	}
	return HostProfile{Host: host, Profile: ProfileCavage}
}

// learn records p unless it changes nothing, in memory and in the store.
func (c *Client) learn(ctx context.Context, p HostProfile, was HostProfile) {
	if was.Source == SourcePinned || (was.Profile == p.Profile && was.Source == p.Source) {
		return
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = time.Now().UTC()
	}
	if p.Software == "" {
		p.Software = was.Software
	}
	c.profiles.set(p)
	if c.cfg.Profiles != nil {
		if err := c.cfg.Profiles.SaveSignatureProfile(ctx, p); err != nil {
			c.cfg.Log.Error(err, "saving signature profile", "host", p.Host, "profile", p.Profile)
		}
	}
	c.cfg.Log.V(1).Info("signature profile learnt", "host", p.Host, "profile", p.Profile, "source", p.Source, "was", was.Profile)
}

// ObserveInbound is told how a peer signed a request that our verifier accepted. A peer
// whose software signs RFC 9421 verifies it too, so a host still on the default (or on
// what NodeInfo suggested) moves to RFC 9421: with our Ed25519 key when it signed with
// an Ed25519 key (it publishes FEP-521a Multikeys, so it reads them), with our RSA key
// otherwise. A profile learnt from a knock or an Accept-Signature, or pinned, is kept:
// what the peer answered us is stronger evidence than how it signs.
func (c *Client) ObserveInbound(ctx context.Context, host string, v *Verified) {
	if v == nil || v.Scheme != SchemeRFC9421 || host == "" {
		return
	}
	was := c.profileFor(ctx, &url.URL{Host: host}, false)
	if was.Source != "" && was.Source != SourceNodeInfo {
		return
	}
	p := ProfileRFC9421RSA
	if v.Algorithm == AlgEd25519RFC {
		p = ProfileRFC9421Ed25519
	}
	if was.Source == SourceNodeInfo && was.Profile.Scheme() == SchemeRFC9421 {
		return // NodeInfo already chose RFC 9421
	}
	c.learn(ctx, HostProfile{Host: was.Host, Profile: p, Source: SourceInbound}, was)
}

// knock sends a signed request with the host's profile and settles the double knock:
//   - a 401 with an Accept-Signature we can fulfil is retried once with the RFC 9421
//     signature it asks for (its components and nonce: a peer asking for a fresh nonce
//     every time is answered every time), and that profile is remembered when the retry
//     is answered 2xx;
//   - otherwise an RFC 9421 signature answered 400, 401 or 403 is retried once with
//     cavage (every peer takes it), and cavage is remembered when that retry is 2xx;
//   - a 2xx to a POST confirms the profile (remembered as learnt by knock when it was
//     the default; a GET's 2xx proves nothing, public documents are served to anyone); a
//     pinned profile is used as is, without retry.
//
// So one request costs at most two.
func (c *Client) knock(ctx context.Context, method string, u *url.URL, body []byte, accept, contentType string, signer *Signer) (*Response, error) {
	hp := c.profileFor(ctx, u, true)
	resp, err := c.do(ctx, method, u, body, accept, contentType, signer, hp.Profile, nil)
	if err != nil || hp.Source == SourcePinned {
		return resp, err
	}
	ok := func(r *Response) bool { return r.Status >= 200 && r.Status < 300 }
	switch {
	case ok(resp):
		if hp.Profile == ProfileCavage && resp.Header.Get("Accept-Signature") != "" {
			// RFC 9421 section 5.1: the peer tells us, unasked, that it takes message
			// signatures; the next request uses them (and falls back if they fail).
			if ch, found := parseChallenge(resp.Header.Get("Accept-Signature"), signer.keyIDs(), signer.Ed25519 != nil); found {
				c.learn(ctx, HostProfile{Host: hp.Host, Profile: ch.Profile, Source: SourceAcceptSignature}, hp)
				return resp, nil
			}
		}
		if hp.Source == "" && method != http.MethodGet {
			// Only a POST's 2xx shows the signature verified: most servers answer a GET
			// of a public document without looking at its signature.
			c.learn(ctx, HostProfile{Host: hp.Host, Profile: hp.Profile, Source: SourceKnock}, hp)
		}
		return resp, nil
	case resp.Status == http.StatusUnauthorized && c.fulfils(resp, signer) != nil:
		ch := c.fulfils(resp, signer)
		retry, err := c.do(ctx, method, u, body, accept, contentType, signer, ch.Profile, ch)
		if err != nil {
			return nil, err
		}
		if ok(retry) {
			c.learn(ctx, HostProfile{Host: hp.Host, Profile: ch.Profile, Source: SourceAcceptSignature}, hp)
		}
		return retry, nil
	case hp.Profile.Scheme() == SchemeRFC9421 && (resp.Status == http.StatusBadRequest || resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden):
		retry, err := c.do(ctx, method, u, body, accept, contentType, signer, ProfileCavage, nil)
		if err != nil {
			return nil, err
		}
		if ok(retry) {
			c.learn(ctx, HostProfile{Host: hp.Host, Profile: ProfileCavage, Source: SourceKnock}, hp)
		}
		return retry, nil
	}
	return resp, nil
}

// fulfils returns the member of resp's Accept-Signature our keys can fulfil, or nil.
func (c *Client) fulfils(resp *Response, signer *Signer) *challenge {
	v := resp.Header.Get("Accept-Signature")
	if v == "" {
		return nil
	}
	ch, found := parseChallenge(v, signer.keyIDs(), signer.Ed25519 != nil)
	if !found {
		return nil
	}
	return &ch
}

// keyIDs are the key ids the signer can sign under.
func (s *Signer) keyIDs() []string {
	ids := []string{s.KeyID}
	if s.Ed25519 != nil {
		ids = append(ids, s.Ed25519KeyID)
	}
	return ids
}

// sign signs req with profile (and the components and nonce of ch, when answering an
// Accept-Signature). A profile needing the Ed25519 key falls back to RSA RFC 9421 when
// the signer has none.
func (c *Client) sign(req *http.Request, body []byte, signer *Signer, profile SignatureProfile, ch *challenge) error {
	key, keyID := signer.Key, signer.KeyID
	if key == nil {
		return newErr(KindUnsupported, "", nil, "signer without a key")
	}
	if profile == ProfileCavage {
		return SignCavage(req, body, key, keyID, CavageOptions{Now: signer.now()})
	}
	if profile == ProfileRFC9421Ed25519 && signer.Ed25519 != nil {
		key, keyID = signer.Ed25519, signer.Ed25519KeyID
	}
	alg, err := rfc9421AlgFor(key)
	if err != nil {
		return err
	}
	opt := RFC9421Options{KeyID: keyID, Alg: alg, Created: signer.now()}
	if ch != nil {
		opt.Label, opt.Nonce, opt.IncludeAlg = ch.Label, ch.Nonce, ch.Alg != ""
		opt.Components = DefaultRFC9421Components(body != nil)
		for _, comp := range ch.Components {
			if !containsString(opt.Components, comp) {
				opt.Components = append(opt.Components, comp)
			}
		}
	}
	return SignRFC9421(Message{Request: req}, body, key, opt)
}
