package activitypub

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// unknownPropsByMap is what unknownProps replaces: a second decode of the document into
// a map, without the modelled names.
func unknownPropsByMap(b []byte) map[string]json.RawMessage {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil
	}
	for k := range all {
		if knownProps[strings.ToLower(k)] {
			delete(all, k)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all
}

// extraDocuments are the cases where scanning and decoding could disagree.
var extraDocuments = map[string]string{
	"none":                       `{"id":"https://a/1","type":"Note"}`,
	"unknown string and object":  `{"id":"x","sensitive":false,"atomUri":"https://a/1","x:y":{"a":[1,"}]",{"b":null}]}}`,
	"whitespace everywhere":      " \n{ \"id\" : \"x\" ,\t\"z\" :\r\n [ 1 , 2 ] , \"n\" : -1.5e3 }\n",
	"case variants are modelled": `{"ID":"x","Type":"Note","CONTENT":"c","Other":1}`,
	"escaped names":              `{"\u0069d":"x","a\"b":1,"c\\d":2,"\u00e9t\u00e9":3}`,
	"duplicates: the last wins":  `{"k":1,"k":{"v":2}}`,
	"strings with brackets":      `{"k":"{[\"]}","j":"\\","l":["\\\"",{"m":"}"}]}`,
	"literals":                   `{"t":true,"f":false,"n":null,"z":0}`,
	"empty":                      `{}`,
	"invalid UTF-8 name":         "{\"a\xffb\":1}",
	"nested unknown in embedded": `{"type":"Create","object":{"type":"Note","quoteUrl":"https://q"}}`,
}

func TestUnknownPropsMatchesDecoding(t *testing.T) {
	docs := map[string][]byte{}
	for name, d := range extraDocuments {
		docs[name] = []byte(d)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = b
	}
	for name, b := range docs {
		t.Run(name, func(t *testing.T) {
			if !json.Valid(b) {
				t.Fatalf("not valid JSON: %s", b)
			}
			if got, want := unknownProps(b), unknownPropsByMap(b); !reflect.DeepEqual(got, want) {
				t.Errorf("unknownProps = %q, decoding gives %q", got, want)
			}
		})
	}
}

func TestUnmarshalStringMatchesDecoding(t *testing.T) {
	for _, in := range []string{`""`, `"https://a/b?c=d#e"`, `"a\"b"`, `"\u00e9"`, "\"a\xffb\"", `"tab\tx"`, `"é"`, `"\\"`} {
		var got, want string
		gotErr, wantErr := unmarshalString([]byte(in), &got), json.Unmarshal([]byte(in), &want)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("unmarshalString(%q) = %q, %v; json.Unmarshal: %q, %v", in, got, gotErr, want, wantErr)
		}
	}
}

// FuzzUnknownProps checks the scan against a second decode on any valid JSON object.
func FuzzUnknownProps(f *testing.F) {
	for _, d := range extraDocuments {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		if got, want := unknownProps(b), unknownPropsByMap(b); !reflect.DeepEqual(got, want) {
			t.Errorf("unknownProps(%q) = %q, decoding gives %q", b, got, want)
		}
	})
}

// refsByRawMessages is what Refs.UnmarshalJSON's array scan replaces: the array decoded
// into json.RawMessage elements, each decoded as a Ref.
func refsByRawMessages(b []byte) (Refs, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, err
	}
	var rs Refs
	for _, raw := range raws {
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '[' {
			continue
		}
		var r Ref
		if err := r.UnmarshalJSON(raw); err != nil {
			return nil, err
		}
		if !r.IsZero() {
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// refsArrays are arrays where the scan and a decode could disagree.
var refsArrays = []string{
	`[]`, ` [ ] `, `["https://a/1"]`, `["https://a/1","https://b/2"]`,
	" [ \"https://a/1\" ,\n\t\"https://b/2\" ] ", `[null,"x",null]`, `[["nested"],"x",[]]`,
	`[{"id":"https://a/1","type":"Mention","href":"https://a/1"},"y"]`, `["a\"]b",{"name":"]}"}]`,
	`["\u0068ttps://a/1"]`, `[1,"x"]`, `[true]`, `[{"id":1}]`,
	`["x",]`, `["x"`, `[,"x"]`, `["x" "y"]`, "[\"a\xffb\"]", `[{"id":"x"}}]`,
}

func TestRefsArrayMatchesDecoding(t *testing.T) {
	for _, in := range refsArrays {
		var got Refs
		gotErr := got.UnmarshalJSON([]byte(in))
		want, wantErr := refsByRawMessages([]byte(in))
		if (gotErr == nil) != (wantErr == nil) || (gotErr == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("Refs.UnmarshalJSON(%q) = %+v, %v; decoding gives %+v, %v", in, got, gotErr, want, wantErr)
		}
	}
}

// FuzzRefsArray checks the scan against a decode into raw elements on any input.
func FuzzRefsArray(f *testing.F) {
	for _, a := range refsArrays {
		f.Add([]byte(a))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(bytes.TrimSpace(b)) == 0 || bytes.TrimSpace(b)[0] != '[' {
			return
		}
		var got Refs
		gotErr := got.UnmarshalJSON(b)
		want, wantErr := refsByRawMessages(b)
		if (gotErr == nil) != (wantErr == nil) || (gotErr == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("Refs.UnmarshalJSON(%q) = %+v, %v; decoding gives %+v, %v", b, got, gotErr, want, wantErr)
		}
	})
}
