package server

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/lookup"
	"github.com/fedforge/fedforge/internal/urls"
)

// SubscribeRel is the WebFinger link relation of an instance's "follow from here" URL
// template (OStatus remote follow); Mastodon's is
// https://<instance>/authorize_interaction?uri={uri}.
const SubscribeRel = "http://ostatus.org/schema/1.0/subscribe"

// maxHandle bounds the handle a visitor types (a WebFinger acct is user@host).
const maxHandle = 320

// remoteFollow serves POST /actors/{username}/follow, the form of the profile page: the
// visitor types their handle (you@your.instance), the server reads their instance's
// WebFinger for the subscribe template (through the outbound guard, rate limited) and
// redirects the browser there with this actor's id, so the visitor's own instance asks
// them to confirm the follow. Whatever fails, the answer is a page with the handle to
// paste into their instance's search instead.
func (f *federation) remoteFollow(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fs, ok := f.docs.serverOr503(w, r)
	if !ok {
		return
	}
	a, err := f.actors.byUsername(ctx, r.PathValue("username"), false)
	if err != nil {
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return
	}
	if a == nil {
		notFound(w, false)
		return
	}
	page := fallbackPage{Title: profileTitle(a), Handle: "@" + urls.Handle(a.Spec.PreferredUsername, fs.Spec.Host),
		Profile: urls.ForActor(fs.BaseURL(), a.Spec.PreferredUsername).ID}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	user, host, err := parseHandle(r.PostFormValue("handle"))
	if err != nil {
		page.Problem = err.Error()
		page.write(w, http.StatusBadRequest)
		return
	}
	log := f.log.WithValues("actor", a.Name, "host", host, "remote", remoteIP(r))
	if !f.lookups.allow(remoteIP(r), f.now()) {
		log.Info("remote follow lookup refused: rate limited")
		page.Problem = "Too many lookups right now; try again in a minute, or follow by hand."
		w.Header().Set("Retry-After", "60")
		page.write(w, http.StatusTooManyRequests)
		return
	}
	target, err := f.subscribeURL(ctx, user, host, page.Profile)
	if err != nil {
		log.Info("remote follow lookup failed", "error", err.Error())
		page.Problem = fmt.Sprintf("%s did not tell us where to follow from (%s).", host, truncate(err.Error(), 200))
		page.write(w, http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// subscribeURL reads user@host's WebFinger and fills its subscribe template with uri.
func (f *federation) subscribeURL(ctx context.Context, user, host, uri string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	jrd, err := lookup.Finger(ctx, f.client, user, host)
	if err != nil {
		return "", err
	}
	for _, l := range jrd.Links {
		if l.Rel != SubscribeRel || !strings.Contains(l.Template, "{uri}") {
			continue
		}
		target := strings.ReplaceAll(l.Template, "{uri}", url.QueryEscape(uri))
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "", fmt.Errorf("the subscribe template of %s is not an http(s) URL", host)
		}
		return u.String(), nil
	}
	return "", errors.New("no subscribe template in its WebFinger answer")
}

// parseHandle reads "you@your.instance", with or without a leading @ or acct:, as every
// lookup does (internal/lookup), within the form's shorter bound.
func parseHandle(h string) (user, host string, err error) {
	if len(strings.TrimSpace(h)) > maxHandle {
		return "", "", fmt.Errorf("a handle has at most %d characters", maxHandle)
	}
	if user, host, err = lookup.ParseHandle(h); err != nil {
		return "", "", errors.New("type your handle as you@your.instance")
	}
	return user, host, nil
}

// authorizeInteraction serves GET /authorize_interaction?uri=..., the target of this
// server's own subscribe template (the reverse direction: a visitor of a remote profile
// types the handle of an actor here). Fedforge actors are Kubernetes objects, so there
// is no one to log in: the page says how to follow the account with a Subscription.
func (d *documents) authorizeInteraction(w http.ResponseWriter, r *http.Request) {
	fs, ok := d.serverOr503(w, r)
	if !ok {
		return
	}
	uri := r.URL.Query().Get("uri")
	status := http.StatusOK
	if u, err := url.Parse(uri); len(uri) > 2048 || err != nil || !(u.Scheme == "https" || u.Scheme == "http" || u.Scheme == "acct") {
		uri, status = "", http.StatusBadRequest
	}
	data := struct{ URI, Namespace string }{URI: uri, Namespace: fs.Namespace}
	setPageHeaders(w)
	w.WriteHeader(status)
	_ = authorizePage.Execute(w, data)
}

// setPageHeaders are the headers of every HTML page: no script, no style from elsewhere.
// The Content-Security-Policy sets no form-action, so that the profile form's redirect
// to the visitor's instance is allowed.
func setPageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
}

// fallbackPage is the answer when the visitor's instance cannot be asked.
type fallbackPage struct{ Title, Handle, Profile, Problem string }

func (p fallbackPage) write(w http.ResponseWriter, status int) {
	setPageHeaders(w)
	w.WriteHeader(status)
	_ = fallbackTemplate.Execute(w, p)
}

var fallbackTemplate = template.Must(template.New("fallback").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Follow {{.Title}}</title></head>
<body>
<h1>Follow {{.Title}}</h1>
<p id="problem">{{.Problem}}</p>
<p>Paste this handle into the search of your Fediverse instance and follow it there:</p>
<p><input id="handle-to-paste" readonly value="{{.Handle}}" size="40"></p>
<p><a href="{{.Profile}}">Back to the profile</a></p>
</body>
</html>
`))

var authorizePage = template.Must(template.New("authorize").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Follow from Fedforge</title></head>
<body>
<h1>Follow from Fedforge</h1>
{{if .URI}}<p>Actors of this server are Kubernetes objects. To follow <code>{{.URI}}</code> from one of them, apply:</p>
<pre>apiVersion: federation.fedforge.dev/v1alpha1
kind: Subscription
metadata:
  name: follow-someone
  namespace: {{.Namespace}}
spec:
  direction: Outbound
  actorRef:
    name: YOUR-ACTOR
  remoteActor: {{.URI}}</pre>
{{else}}<p>The address to follow is missing or is not an http(s) or acct: URI.</p>{{end}}
</body>
</html>
`))

// lookupLimiter bounds the WebFinger lookups of the profile form: a few per minute from
// one address, and a ceiling for the server, so the form cannot be used to make this
// server fetch from others at will. The zero value is ready to use.
type lookupLimiter struct {
	mu     sync.Mutex
	global *rate.Limiter
	per    map[string]*rate.Limiter
}

// Bounds of the form's lookups.
const (
	lookupsPerMinutePerAddress = 6
	lookupsPerSecond           = 5
	lookupAddresses            = 4096 // the per-address table is cleared when it is full
)

func (l *lookupLimiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.global == nil {
		l.global = rate.NewLimiter(lookupsPerSecond, 2*lookupsPerSecond)
		l.per = map[string]*rate.Limiter{}
	}
	lim := l.per[addr]
	if lim == nil {
		if len(l.per) >= lookupAddresses {
			clear(l.per)
		}
		lim = rate.NewLimiter(rate.Every(time.Minute/lookupsPerMinutePerAddress), lookupsPerMinutePerAddress/2)
		l.per[addr] = lim
	}
	return lim.AllowN(now, 1) && l.global.AllowN(now, 1)
}

// profileTitle is the name the pages show for an actor.
func profileTitle(a *fedv1.FederatedActor) string {
	if a.Spec.Name != "" {
		return a.Spec.Name
	}
	return a.Spec.PreferredUsername
}
