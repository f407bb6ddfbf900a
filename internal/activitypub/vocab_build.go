package activitypub

import (
	"crypto/ed25519"
	"encoding/json"
	"time"
)

// The @context of what we write is self-contained: AS2, the security contexts every
// Fediverse JSON-LD processor ships (Fedify, Mastodon's LD-signature code), and inline term
// definitions for everything else, Mastodon's way. The ForgeFed terms are defined inline
// too, with the IRIs and types of https://forgefed.org/ns, instead of naming that context:
// a JSON-LD processor would have to fetch it before reading any activity of ours (Fedify
// refuses the activity when it cannot), and the ForgeFed vocabulary allows any context that
// gives its terms their IRIs. docs/decisions.md says more.

// forgeFedTerms defines the ForgeFed types and properties we write.
const forgeFedTerms = `"forge":"https://forgefed.org/ns#",` +
	`"Repository":"forge:Repository","Push":"forge:Push","Commit":"forge:Commit","Branch":"forge:Branch",` +
	`"Ticket":"forge:Ticket","Patch":"forge:Patch","TicketTracker":"forge:TicketTracker","PatchTracker":"forge:PatchTracker",` +
	`"Project":"forge:Project","Team":"forge:Team","Resolve":"forge:Resolve","Grant":"forge:Grant","Revoke":"forge:Revoke",` +
	`"team":{"@id":"forge:team","@type":"@id"},"forks":{"@id":"forge:forks","@type":"@id"},` +
	`"forkedFrom":{"@id":"forge:forkedFrom","@type":"@id"},"ticketsTrackedBy":{"@id":"forge:ticketsTrackedBy","@type":"@id"},` +
	`"tracksTicketsFor":{"@id":"forge:tracksTicketsFor","@type":"@id"},"sendPatchesTo":{"@id":"forge:sendPatchesTo","@type":"@id"},` +
	`"cloneUri":{"@id":"forge:cloneUri","@type":"@id"},"pushUri":{"@id":"forge:pushUri","@type":"@id"},` +
	`"hashBefore":{"@id":"forge:hashBefore","@type":"xsd:string"},"hashAfter":{"@id":"forge:hashAfter","@type":"xsd:string"},` +
	`"hash":{"@id":"forge:hash","@type":"xsd:string"},"ref":{"@id":"forge:ref","@type":"xsd:string"},` +
	`"committedBy":{"@id":"forge:committedBy","@type":"@id"},"committed":{"@id":"forge:committed","@type":"xsd:dateTime"},` +
	`"created":{"@id":"forge:created","@type":"xsd:dateTime"},"description":{"@id":"forge:description","@type":"@id"},` +
	`"filesAdded":{"@id":"forge:filesAdded","@type":"xsd:string"},"filesModified":{"@id":"forge:filesModified","@type":"xsd:string"},` +
	`"filesRemoved":{"@id":"forge:filesRemoved","@type":"xsd:string"},"isResolved":{"@id":"forge:isResolved","@type":"xsd:boolean"},` +
	`"resolvedBy":{"@id":"forge:resolvedBy","@type":"@id"},"resolved":{"@id":"forge:resolved","@type":"xsd:dateTime"},` +
	`"dependsOn":{"@id":"forge:dependsOn","@type":"@id"},"xsd":"http://www.w3.org/2001/XMLSchema#"`

// multikeyTerms defines the FEP-521a key terms (assertionMethod, Multikey, controller,
// publicKeyMultibase) inline with the IRIs the Controlled Identifiers 1.0 context
// (https://www.w3.org/ns/cid/v1) gives them, as https://www.w3.org/ns/did/v1 and
// https://w3id.org/security/multikey/v1 (what Fedify writes) do too. Neither security/v1
// nor data-integrity/v1 defines them, and a processor drops undefined terms on expansion,
// so without these a JSON-LD peer would not see our Ed25519 key. Inline rather than naming
// did/v1 or multikey/v1: only processors that preload those would read them without a fetch.
const multikeyTerms = `"assertionMethod":{"@id":"https://w3id.org/security#assertionMethod","@type":"@id","@container":"@set"},` +
	`"Multikey":"https://w3id.org/security#Multikey",` +
	`"controller":{"@id":"https://w3id.org/security#controller","@type":"@id"},` +
	`"publicKeyMultibase":{"@id":"https://w3id.org/security#publicKeyMultibase","@type":"https://w3id.org/security#multibase"},`

// actorContext is the @context of every actor we write: AS2, the security vocabulary for
// publicKey, the data-integrity context, the Multikey terms of our Ed25519 key, the
// Mastodon terms Mastodon itself declares inline, and the ForgeFed terms.
var actorContext = json.RawMessage(`["https://www.w3.org/ns/activitystreams","https://w3id.org/security/v1","https://w3id.org/security/data-integrity/v1",{` + multikeyTerms + `"manuallyApprovesFollowers":"as:manuallyApprovesFollowers","toot":"http://joinmastodon.org/ns#","featured":{"@id":"toot:featured","@type":"@id"},"discoverable":"toot:discoverable","indexable":"toot:indexable","alsoKnownAs":{"@id":"as:alsoKnownAs","@type":"@id"},"movedTo":{"@id":"as:movedTo","@type":"@id"},"sensitive":"as:sensitive","Hashtag":"as:Hashtag","schema":"http://schema.org#","PropertyValue":"schema:PropertyValue","value":"schema:value",` + forgeFedTerms + `}]`)

// activityContext is the @context of activities and objects we write.
var activityContext = json.RawMessage(`["https://www.w3.org/ns/activitystreams",{"sensitive":"as:sensitive","Hashtag":"as:Hashtag","toot":"http://joinmastodon.org/ns#",` + forgeFedTerms + `}]`)

// ActorContext returns the @context we write on actor documents.
func ActorContext() json.RawMessage { return append(json.RawMessage(nil), actorContext...) }

// ActivityContext returns the @context we write on activities, objects and collections.
func ActivityContext() json.RawMessage { return append(json.RawMessage(nil), activityContext...) }

// ActorSpec is everything needed to write an actor document. The server fills it from
// a FederatedActor; NewActor turns it into the one canonical document.
type ActorSpec struct {
	ID                string
	Types             []string // e.g. ["Person"] or ["Repository","Service"]; see FollowableTypes
	PreferredUsername string
	Name, Summary     string
	URL               string // HTML profile (the forge page)
	IconURL           string
	IconMediaType     string
	Inbox, Outbox     string
	Followers         string
	Following         string
	Featured          string
	SharedInbox       string
	RSAPublicKeyPEM   string            // published as publicKey (<id>#main-key)
	Ed25519PublicKey  ed25519.PublicKey // published as assertionMethod (<id>#ed25519-key)
	ManuallyApproves  bool
	Discoverable      bool
	Published         time.Time
	AlsoKnownAs       []string
	MovedTo           string
	// ForgeFed properties for Repository and tracker actors.
	CloneURI []string
	// Forks is the ForgeFed forks collection (an OrderedCollection of the forks' ids).
	Forks string
	// Likes is the AS2 likes collection (a Repository's stars, ForgeFed says).
	Likes            string
	TicketsTrackedBy string
	SendPatchesTo    string
	Team             string
	ForkedFrom       string
}

// FollowableTypes returns the type list to write for a ForgeFed actor kind so that
// Mastodon can follow it: Repository, Project, Team and trackers are paired with Service
// (or Group for Team/Project), and AS2 actor types are kept as they are.
func FollowableTypes(kind string) []string {
	switch kind {
	case TypePerson, TypeService, TypeApplication, TypeGroup, TypeOrganization:
		return []string{kind}
	case TypeTeam, TypeProject:
		return []string{kind, TypeGroup}
	}
	return []string{kind, TypeService}
}

// MainKeyID is the keyId of an actor's RSA key, in the form Mastodon uses.
func MainKeyID(actorID string) string { return actorID + "#main-key" }

// Ed25519KeyID is the id of an actor's Ed25519 Multikey.
func Ed25519KeyID(actorID string) string { return actorID + "#ed25519-key" }

func boolPtr(b bool) *bool { return &b }

// NewActor builds the actor document for spec.
func NewActor(s ActorSpec) *Object {
	o := &Object{
		Context:                   ActorContext(),
		ID:                        s.ID,
		Type:                      Types(s.Types),
		PreferredUsername:         s.PreferredUsername,
		Name:                      s.Name,
		Summary:                   s.Summary,
		Inbox:                     s.Inbox,
		Outbox:                    s.Outbox,
		Followers:                 s.Followers,
		Following:                 s.Following,
		Featured:                  s.Featured,
		ManuallyApprovesFollowers: boolPtr(s.ManuallyApproves),
		Discoverable:              boolPtr(s.Discoverable),
		AlsoKnownAs:               IRIRefs(s.AlsoKnownAs...),
	}
	if len(o.AlsoKnownAs) == 0 {
		o.AlsoKnownAs = nil
	}
	if s.URL != "" {
		o.URL = IRIRefs(s.URL)
	}
	if !s.Published.IsZero() {
		o.Published = Time{s.Published}
	}
	if s.MovedTo != "" {
		o.MovedTo = IRIRef(s.MovedTo)
	}
	if s.IconURL != "" {
		o.Icon = ObjectRef(&Object{Type: Types{TypeImage}, MediaType: s.IconMediaType, URL: IRIRefs(s.IconURL)})
	}
	if s.SharedInbox != "" {
		o.Endpoints = &Endpoints{SharedInbox: s.SharedInbox}
	}
	if s.RSAPublicKeyPEM != "" {
		pemText := s.RSAPublicKeyPEM
		// Write PKIX ("BEGIN PUBLIC KEY"), the form every peer parses, whatever we were given.
		if k, err := ParsePublicKeyPEM(pemText); err == nil {
			if p, err := MarshalPublicKeyPEM(k); err == nil {
				pemText = p
			}
		}
		o.PublicKey = PublicKeys{{ID: MainKeyID(s.ID), Owner: s.ID, PublicKeyPem: pemText}}
	}
	if len(s.Ed25519PublicKey) == ed25519.PublicKeySize {
		o.AssertionMethod = Multikeys{{ID: Ed25519KeyID(s.ID), Type: TypeMultikey, Controller: s.ID,
			PublicKeyMultibase: EncodeMultibaseEd25519(s.Ed25519PublicKey)}}
	}
	if len(s.CloneURI) > 0 {
		o.CloneURI = IRIRefs(s.CloneURI...)
	}
	if s.Forks != "" {
		o.Forks = IRIRef(s.Forks)
	}
	if s.Likes != "" {
		o.Likes = IRIRef(s.Likes)
	}
	if s.TicketsTrackedBy != "" {
		o.TicketsTrackedBy = IRIRef(s.TicketsTrackedBy)
	}
	if s.SendPatchesTo != "" {
		o.SendPatchesTo = IRIRef(s.SendPatchesTo)
	}
	if s.Team != "" {
		o.Team = IRIRef(s.Team)
	}
	if s.ForkedFrom != "" {
		o.ForkedFrom = IRIRef(s.ForkedFrom)
	}
	return o
}

// Visibility is how widely an activity is addressed, in Mastodon's terms.
type Visibility string

// The visibilities Mastodon renders: public (timelines), unlisted (no public timelines),
// followers-only.
const (
	Public        Visibility = "public"
	Unlisted      Visibility = "unlisted"
	FollowersOnly Visibility = "followers"
)

// Address returns to and cc for an activity by an actor with the given followers
// collection, as Mastodon writes them for each visibility.
func Address(v Visibility, followers string, mentions ...string) (to, cc Refs) {
	switch v {
	case Public:
		return IRIRefs(PublicIRI), IRIRefs(append([]string{followers}, mentions...)...)
	case Unlisted:
		return IRIRefs(followers), IRIRefs(append([]string{PublicIRI}, mentions...)...)
	default:
		to = IRIRefs(followers)
		if len(mentions) > 0 {
			cc = IRIRefs(mentions...)
		}
		return to, cc
	}
}

// NewActivity builds an activity with our @context. object may be an IRI or embedded
// object Ref; to and cc come from Address.
func NewActivity(typ, id, actor string, object Ref, to, cc Refs) *Object {
	return &Object{Context: ActivityContext(), ID: id, Type: Types{typ}, Actor: IRIRef(actor), Object: object, To: to, Cc: cc}
}

// Embed strips the @context of o, for objects embedded in an activity.
func Embed(o *Object) Ref {
	c := *o
	c.Context = nil
	return ObjectRef(&c)
}
