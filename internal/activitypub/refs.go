package activitypub

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// Ref and Refs: property values that may be an IRI or an embedded object, one or
// several, read tolerantly and written in one canonical form (moved from vocab.go).

// Ref is a property value that may arrive as an IRI string or as an embedded object (or,
// tolerated, an array of which we keep the first). We write an IRI when no object is
// embedded and the object otherwise.
type Ref struct {
	IRI    string
	Object *Object
}

// IRIRef makes a Ref that is only an IRI, the canonical way we link to other documents.
func IRIRef(iri string) Ref { return Ref{IRI: iri} }

// ObjectRef embeds o, used where peers expect the object inline (Create, Accept).
func ObjectRef(o *Object) Ref { return Ref{Object: o} }

// ID returns the IRI of the reference, whether linked or embedded.
func (r Ref) ID() string {
	if r.Object != nil {
		if r.Object.ID != "" {
			return r.Object.ID
		}
		return r.Object.Href
	}
	return r.IRI
}

// IsZero reports an absent reference, so that omitzero drops it when writing.
func (r Ref) IsZero() bool { return r.IRI == "" && r.Object == nil }

// MarshalJSON writes the canonical form: the object if embedded, else the IRI string.
func (r Ref) MarshalJSON() ([]byte, error) {
	if r.Object != nil {
		return json.Marshal(r.Object)
	}
	return json.Marshal(r.IRI)
}

// UnmarshalJSON accepts a string, an object, null or an array of those (keeping the first
// usable element), because peers send all of them for the same property.
func (r *Ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*r = Ref{}
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	switch b[0] {
	case '"':
		return unmarshalString(b, &r.IRI)
	case '{':
		r.Object = new(Object)
		return r.Object.UnmarshalJSON(b) // which checks b, as json.Unmarshal would
	case '[':
		var rs Refs
		if err := json.Unmarshal(b, &rs); err != nil {
			return err
		}
		if len(rs) > 0 {
			*r = rs[0]
		}
		return nil
	}
	return &json.UnmarshalTypeError{Value: "non-reference", Type: reflect.TypeOf(r)}
}

// Refs is a property that may hold several references (to, cc, tag, attachment, url...).
// It accepts a single string or object as a one-element list and is always written as
// an array.
type Refs []Ref

// IDs returns the IRIs of all references, for addressing and lookups.
func (rs Refs) IDs() []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if id := r.ID(); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// Contains reports whether any reference has the given IRI.
func (rs Refs) Contains(iri string) bool {
	for _, r := range rs {
		if r.ID() == iri {
			return true
		}
	}
	return false
}

// IRIRefs makes a Refs of plain IRIs, the usual way to write to/cc.
func IRIRefs(iris ...string) Refs {
	out := make(Refs, len(iris))
	for i, s := range iris {
		out[i] = Ref{IRI: s}
	}
	return out
}

// UnmarshalJSON accepts a single value or an array; nulls inside arrays are skipped.
func (rs *Refs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*rs = nil
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] != '[' {
		var r Ref
		if err := r.UnmarshalJSON(b); err != nil {
			return err
		}
		if !r.IsZero() {
			*rs = Refs{r}
		}
		return nil
	}
	// The elements are found by scanning the checked array, not by decoding it into a
	// []json.RawMessage first: that cost a decoder, a slice and a copy of every element
	// per property, three times per inbox POST (to and cc, and the object's to; issue 17).
	if !json.Valid(b) {
		var raws []json.RawMessage
		return json.Unmarshal(b, &raws) // its error says what is wrong, as before
	}
	for i := skipSpace(b, 1); i < len(b) && b[i] != ']'; {
		end := endOfValue(b, i)
		raw := b[i:end]
		if i = skipSpace(b, end); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		if raw[0] == '[' {
			continue // nested arrays have no meaning in AS2
		}
		var r Ref
		if err := r.UnmarshalJSON(raw); err != nil {
			return err
		}
		if !r.IsZero() {
			*rs = append(*rs, r)
		}
	}
	return nil
}
