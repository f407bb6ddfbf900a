package lookup

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fedforge/fedforge/internal/activitypub"
)

func TestParse(t *testing.T) {
	tests := map[string]struct {
		in         string
		want       Target
		bad        bool
		wantString string
	}{
		"https URL":          {in: "https://social.example/users/ada", want: Target{URL: "https://social.example/users/ada"}},
		"acct: handle":       {in: "acct:ada@social.example", want: Target{User: "ada", Host: "social.example"}, wantString: "acct:ada@social.example"},
		"@user@host":         {in: " @ada@social.example ", want: Target{User: "ada", Host: "social.example"}},
		"user@host":          {in: "ada@social.example", want: Target{User: "ada", Host: "social.example"}},
		"empty":              {in: "", bad: true},
		"ftp":                {in: "ftp://social.example/x", bad: true},
		"credentials in URL": {in: "https://me:secret@social.example/users/ada", bad: true},
		"handle with a path": {in: "ada@social.example/x", bad: true},
		"no host":            {in: "ada", bad: true},
		"too long":           {in: "https://social.example/" + strings.Repeat("a", MaxTarget), bad: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrBadTarget) || Status(err) != http.StatusBadRequest {
					t.Fatalf("Parse(%q) = %+v, %v; want ErrBadTarget", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if tc.wantString != "" && got.String() != tc.wantString {
				t.Errorf("String() = %q, want %q", got.String(), tc.wantString)
			}
		})
	}
}

func TestIsActorAndStatus(t *testing.T) {
	actor := &activitypub.Object{Type: activitypub.Types{"Repository", "Service"}, Inbox: "https://forge.example/actors/r/inbox"}
	note := &activitypub.Object{Type: activitypub.Types{"Note"}}
	noInbox := &activitypub.Object{Type: activitypub.Types{"Person"}}
	if !IsActor(actor) || IsActor(note) || IsActor(noInbox) {
		t.Errorf("IsActor: repository %v, note %v, person without inbox %v", IsActor(actor), IsActor(note), IsActor(noInbox))
	}
	r := &Result{Object: &activitypub.Object{ID: "https://s.example/notes/1", Type: activitypub.Types{"Note"},
		AttributedTo: activitypub.IRIRefs("https://s.example/users/ada")}}
	if err := r.RequireActor(); err == nil || err.Error() != "https://s.example/notes/1 is a Note, not an actor; its author is https://s.example/users/ada" {
		t.Errorf("RequireActor = %v", err)
	}
	statuses := map[string]struct {
		err  error
		want int
	}{
		"guard":     {&activitypub.Error{Kind: activitypub.KindForbidden}, http.StatusBadRequest},
		"not found": {fmt.Errorf("x: %w", &activitypub.Error{Kind: activitypub.KindNotFound}), http.StatusNotFound},
		"too large": {&activitypub.Error{Kind: activitypub.KindTooLarge}, http.StatusBadGateway},
		"remote":    {&activitypub.Error{Kind: activitypub.KindRemote}, http.StatusBadGateway},
	}
	for name, tc := range statuses {
		if got := Status(tc.err); got != tc.want {
			t.Errorf("%s: Status = %d, want %d", name, got, tc.want)
		}
	}
}
