package server

import (
	"html/template"
	"mime"
	"net/http"
	"strconv"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/urls"
)

// wantsActivity reports whether an Accept header asks for the AS2 document rather than
// the HTML profile. ActivityPub clients send application/activity+json or
// application/ld+json (with the ActivityStreams profile); browsers send text/html. HTML
// wins only when it ranks strictly above the AS2 types, so clients that send nothing,
// */* or application/json get the document.
func wantsActivity(accept string) bool {
	var as2, htmlQ float64 = -1, -1
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
				q = f
			}
		}
		switch mt {
		case "application/activity+json", "application/ld+json":
			as2 = max(as2, q)
		case "text/html", "application/xhtml+xml":
			htmlQ = max(htmlQ, q)
		}
	}
	if htmlQ > 0 && htmlQ > as2 {
		return false
	}
	return true
}

// profilePage is the small HTML page browsers get for an actor without spec.url, with
// the "follow from your instance" form (remote_follow.go).
// html/template escapes every field.
var profilePage = template.Must(template.New("profile").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<link rel="alternate" type="application/activity+json" href="{{.ID}}">
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Handle}}</p>
{{with .Summary}}<p>{{.}}</p>{{end}}
<form method="post" action="/actors/{{.Username}}/follow">
<label for="handle">Follow from your instance: your handle</label>
<input id="handle" name="handle" type="text" placeholder="you@your.instance" maxlength="320" required autocomplete="username">
<button id="follow" type="submit">Follow</button>
</form>
<p>Or follow it from any Fediverse server by searching for {{.Handle}}.</p>
</body>
</html>
`))

// writeProfilePage renders the HTML profile of a.
func writeProfilePage(w http.ResponseWriter, fs *fedv1.FederationServer, a *fedv1.FederatedActor) {
	data := struct{ Title, Handle, Summary, ID, Username string }{
		Title:    profileTitle(a),
		Username: a.Spec.PreferredUsername,
		Handle:   "@" + urls.Handle(a.Spec.PreferredUsername, fs.Spec.Host),
		Summary:  a.Spec.Summary,
		ID:       urls.ForActor(fs.BaseURL(), a.Spec.PreferredUsername).ID,
	}
	setPageHeaders(w)
	_ = profilePage.Execute(w, data)
}
