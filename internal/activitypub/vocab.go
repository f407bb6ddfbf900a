package activitypub

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"time"
)

// PublicIRI is the special collection that makes an object public. We always write this
// form; Public and as:Public (compacted JSON-LD) are accepted on input.
const PublicIRI = "https://www.w3.org/ns/activitystreams#Public"

// IsPublicIRI reports whether iri names the public collection in any form peers use.
func IsPublicIRI(iri string) bool {
	return iri == PublicIRI || iri == "as:Public" || iri == "Public"
}

// MaxDocumentDepth bounds JSON nesting: real documents stay under 10 levels, and every
// level of embedded objects costs another pass of the decoder.
const MaxDocumentDepth = 32

// JSONDepth returns the maximum nesting of arrays and objects in b, skipping strings, so
// that every parser of remote JSON can refuse deep documents before decoding them.
func JSONDepth(b []byte) int { return jsonDepth(b) }

// jsonDepth returns the maximum nesting of arrays and objects in b, skipping strings.
func jsonDepth(b []byte) int {
	depth, maxDepth, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case inStr && c == '"':
			inStr = false
		case inStr:
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > maxDepth {
				maxDepth = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return maxDepth
}

// MaxDocumentBytes bounds every ActivityPub document we decode; Mastodon uses 1 MiB.
const MaxDocumentBytes = 1 << 20

// Types is the type property: one name or several (ForgeFed actors that Mastodon must
// follow are ["Repository","Service"]). One name is written as a string.
type Types []string

// Has reports whether t is among the types.
func (ts Types) Has(t string) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// HasAny reports whether any of the given names is among the types.
func (ts Types) HasAny(names ...string) bool {
	for _, n := range names {
		if ts.Has(n) {
			return true
		}
	}
	return false
}

// MarshalJSON writes a single type as a string and several as an array.
func (ts Types) MarshalJSON() ([]byte, error) {
	if len(ts) == 1 {
		return json.Marshal(ts[0])
	}
	return json.Marshal([]string(ts))
}

// UnmarshalJSON accepts a string or an array of strings; compact IRIs such as
// "as:Note" or "forgefed:Repository" are reduced to the term.
func (ts *Types) UnmarshalJSON(b []byte) error {
	var list []string
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		list = []string{s}
	} else if string(b) != "null" {
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
	}
	for i, t := range list {
		for _, p := range []string{"as:", "forgefed:", "https://www.w3.org/ns/activitystreams#", "https://forgefed.org/ns#", "toot:"} {
			if strings.HasPrefix(t, p) {
				list[i] = t[len(p):]
			}
		}
	}
	*ts = list
	return nil
}

// Time is a date-time property. Reading is tolerant (RFC 3339 with or without zone or
// fraction; anything else is treated as absent rather than failing the whole document);
// writing is RFC 3339 in UTC with a Z, as Mastodon writes it.
type Time struct{ time.Time }

// MarshalJSON writes RFC 3339 UTC, whole seconds.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Truncate(time.Second).Format(time.RFC3339))
}

// UnmarshalJSON parses the date forms peers send.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		*t = Time{}
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999", time.RFC1123} {
		if p, err := time.Parse(layout, s); err == nil {
			*t = Time{p}
			return nil
		}
	}
	*t = Time{}
	return nil
}

// LangMap is a language map (nameMap, contentMap, summaryMap).
type LangMap map[string]string

// Content is a content-with-media-type value, used by source (Mastodon) and by ForgeFed's
// description.
type Content struct {
	Content   string `json:"content,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
}

// UnmarshalJSON accepts an object or, tolerated, a bare string as the content.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*c = Content{}
		return json.Unmarshal(b, &c.Content)
	}
	type plain Content
	var p plain
	if string(b) != "null" {
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
	}
	*c = Content(p)
	return nil
}

// Object is every AS2 object, link, activity, actor and collection in one flat struct:
// peers mix properties freely, and one shape makes tolerant decoding simple. Properties
// we do not model are kept in Extra and written back unchanged.
type Object struct {
	Context json.RawMessage `json:"@context,omitempty"`
	ID      string          `json:"id,omitempty"`
	Type    Types           `json:"type,omitempty"`

	// Core object properties.
	Name         string   `json:"name,omitempty"`
	NameMap      LangMap  `json:"nameMap,omitempty"`
	Summary      string   `json:"summary,omitempty"`
	SummaryMap   LangMap  `json:"summaryMap,omitempty"`
	Content      string   `json:"content,omitempty"`
	ContentMap   LangMap  `json:"contentMap,omitempty"`
	MediaType    string   `json:"mediaType,omitempty"`
	Source       *Content `json:"source,omitempty"`
	URL          Refs     `json:"url,omitempty"`
	AttributedTo Refs     `json:"attributedTo,omitempty"`
	Published    Time     `json:"published,omitzero"`
	Updated      Time     `json:"updated,omitzero"`
	StartTime    Time     `json:"startTime,omitzero"`
	EndTime      Time     `json:"endTime,omitzero"`
	InReplyTo    Ref      `json:"inReplyTo,omitzero"`
	Replies      Ref      `json:"replies,omitzero"`
	Likes        Ref      `json:"likes,omitzero"`
	Shares       Ref      `json:"shares,omitzero"`
	ASContext    Ref      `json:"context,omitzero"` // AS2 "context" (ForgeFed: the repository of a Push)
	Generator    Ref      `json:"generator,omitzero"`
	Icon         Ref      `json:"icon,omitzero"`
	Image        Ref      `json:"image,omitzero"`
	Tag          Refs     `json:"tag,omitempty"`
	Attachment   Refs     `json:"attachment,omitempty"`
	Sensitive    *bool    `json:"sensitive,omitempty"`
	Value        string   `json:"value,omitempty"` // schema:PropertyValue (profile fields)

	// Addressing.
	To       Refs `json:"to,omitempty"`
	Cc       Refs `json:"cc,omitempty"`
	Bto      Refs `json:"bto,omitempty"`
	Bcc      Refs `json:"bcc,omitempty"`
	Audience Refs `json:"audience,omitempty"`

	// Links (Mention, Hashtag, Link).
	Href     string `json:"href,omitempty"`
	Rel      Types  `json:"rel,omitempty"`
	Hreflang string `json:"hreflang,omitempty"`
	Width    int    `json:"width,omitempty"`
	Height   int    `json:"height,omitempty"`

	// Activities.
	Actor      Ref  `json:"actor,omitzero"`
	Object     Ref  `json:"object,omitzero"`
	Target     Ref  `json:"target,omitzero"`
	Origin     Ref  `json:"origin,omitzero"`
	Result     Ref  `json:"result,omitzero"`
	Instrument Ref  `json:"instrument,omitzero"`
	Closed     Time `json:"closed,omitzero"`

	// Actors, with the Mastodon and FEP-521a extensions.
	PreferredUsername         string     `json:"preferredUsername,omitempty"`
	Inbox                     string     `json:"inbox,omitempty"`
	Outbox                    string     `json:"outbox,omitempty"`
	Followers                 string     `json:"followers,omitempty"`
	Following                 string     `json:"following,omitempty"`
	Liked                     string     `json:"liked,omitempty"`
	Featured                  string     `json:"featured,omitempty"`
	FeaturedTags              string     `json:"featuredTags,omitempty"`
	Endpoints                 *Endpoints `json:"endpoints,omitempty"`
	PublicKey                 PublicKeys `json:"publicKey,omitempty"`
	AssertionMethod           Multikeys  `json:"assertionMethod,omitempty"`
	ManuallyApprovesFollowers *bool      `json:"manuallyApprovesFollowers,omitempty"`
	Discoverable              *bool      `json:"discoverable,omitempty"`
	Indexable                 *bool      `json:"indexable,omitempty"`
	AlsoKnownAs               Refs       `json:"alsoKnownAs,omitempty"`
	MovedTo                   Ref        `json:"movedTo,omitzero"`

	// Collections.
	TotalItems   *int `json:"totalItems,omitempty"`
	First        Ref  `json:"first,omitzero"`
	Last         Ref  `json:"last,omitzero"`
	Current      Ref  `json:"current,omitzero"`
	Next         Ref  `json:"next,omitzero"`
	Prev         Ref  `json:"prev,omitzero"`
	PartOf       Ref  `json:"partOf,omitzero"`
	Items        Refs `json:"items,omitempty"`
	OrderedItems Refs `json:"orderedItems,omitempty"`

	// Tombstone.
	FormerType Types `json:"formerType,omitempty"`
	Deleted    Time  `json:"deleted,omitzero"`

	ForgeFed

	// Extra holds every property not modelled above, verbatim, so that a decode followed
	// by an encode loses nothing.
	Extra map[string]json.RawMessage `json:"-"`
}

// knownProps are the JSON names of modelled properties, lower-cased (encoding/json
// matches field names case-insensitively, so Extra must not keep case variants).
var knownProps = func() map[string]bool {
	m := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				m[strings.ToLower(name)] = true
			}
		}
	}
	walk(reflect.TypeOf(Object{}))
	return m
}()

// UnmarshalJSON decodes tolerantly: modelled properties into fields, everything else into
// Extra; the public collection is normalised to PublicIRI in addressing properties.
func (o *Object) UnmarshalJSON(b []byte) error {
	type plain Object
	*o = Object{}
	if err := json.Unmarshal(b, (*plain)(o)); err != nil {
		return err
	}
	o.Extra = unknownProps(b) // b is valid JSON: json.Unmarshal checked it
	for _, rs := range []Refs{o.To, o.Cc, o.Bto, o.Bcc, o.Audience} {
		for i := range rs {
			if rs[i].Object == nil && IsPublicIRI(rs[i].IRI) {
				rs[i].IRI = PublicIRI
			}
		}
	}
	return nil
}

// MarshalJSON writes the modelled properties in struct order, then Extra sorted by name,
// so that output is deterministic (golden files) and unknown properties survive.
func (o Object) MarshalJSON() ([]byte, error) {
	type plain Object
	b, err := json.Marshal(plain(o))
	if err != nil || len(o.Extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(o.Extra))
	for k := range o.Extra {
		if !knownProps[strings.ToLower(k)] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	buf := bytes.NewBuffer(b[:len(b)-1])
	for _, k := range keys {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		v := o.Extra[k]
		if !json.Valid(v) {
			v = json.RawMessage("null")
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// IsPublic reports whether the object is addressed to the public collection (to or cc).
func (o *Object) IsPublic() bool {
	for _, rs := range []Refs{o.To, o.Cc} {
		for _, r := range rs {
			if IsPublicIRI(r.ID()) {
				return true
			}
		}
	}
	return false
}

// SharedInbox returns the actor's shared inbox, falling back to its own inbox, which is
// where one delivery per host goes.
func (o *Object) SharedInbox() string {
	if o.Endpoints != nil && o.Endpoints.SharedInbox != "" {
		return o.Endpoints.SharedInbox
	}
	return o.Inbox
}

// DecodeObject decodes one remote document with the size cap every peer applies. Errors
// are *Error values with KindMalformed (400) or KindTooLarge (413).
func DecodeObject(b []byte) (*Object, error) {
	if len(b) > MaxDocumentBytes {
		return nil, newErr(KindTooLarge, "", nil, "document of %d bytes", len(b))
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, newErr(KindMalformed, "", nil, "document is not a JSON object")
	}
	if d := jsonDepth(b); d > MaxDocumentDepth {
		return nil, newErr(KindMalformed, "", nil, "document nested %d levels deep", d)
	}
	o := new(Object)
	if err := o.UnmarshalJSON(b); err != nil { // checks b as json.Unmarshal would, once
		return nil, newErr(KindMalformed, "", err, "document")
	}
	return o, nil
}
