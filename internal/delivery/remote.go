package delivery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

// QueuePath is where the server mounts QueueHandler (with http.StripPrefix), and what
// a RemoteQueue's base URL ends with: http://<server service>:<internal port>/internal/delivery.
const QueuePath = "/internal/delivery"

// Routes of the internal queue endpoint, relative to QueuePath.
const (
	routeLease       = "/lease"
	routeActivity    = "/activity"
	routeDelivered   = "/delivered"
	routeFailed      = "/failed"
	routeGiveUp      = "/give-up"
	routeHostSuccess = "/hosts/success"
	routeHostFailure = "/hosts/failure"
	routeUnavailable = "/hosts/unavailable"
)

// Bounds on what a Job may ask for.
const (
	maxQueueBody  = 1 << 20
	maxLeaseRows  = 1000
	maxLeaseSpan  = time.Hour
	remoteRetries = 3
)

// Error codes in the JSON error body, mapped back to store sentinels by RemoteQueue.
const (
	codeNotFound   = "not_found"
	codeLeaseLost  = "lease_lost"
	codeBadRequest = "bad_request"
	codeInternal   = "internal"
)

type leaseBody struct {
	Now         time.Time `json:"now"`
	Limit       int       `json:"limit"`
	LeaseMillis int64     `json:"leaseMillis"`
	Owner       string    `json:"owner"`
}

type reportBody struct {
	ID     int64     `json:"id"`
	Owner  string    `json:"owner,omitempty"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

type hostBody struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
	Days int       `json:"days,omitempty"`
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// queueHandler serves a Queue to delivery Jobs.
type queueHandler struct {
	q     Queue
	token [sha256.Size]byte
	ok    bool
	mux   *http.ServeMux
}

// QueueHandler serves q to delivery Jobs over HTTP: lease, load an activity, report
// delivered/failed/given up, and host success/failure, as JSON. Every request needs
// `Authorization: Bearer <token>`, compared in constant time; without it the answer is
// 401. An empty token refuses everything. Mount it on the server's internal listener,
// never on the public one, under QueuePath with http.StripPrefix.
func QueueHandler(q Queue, token string) http.Handler {
	h := &queueHandler{q: q, token: sha256.Sum256([]byte(token)), ok: token != "", mux: http.NewServeMux()}
	h.mux.HandleFunc("POST "+routeLease, h.lease)
	h.mux.HandleFunc("GET "+routeActivity, h.activity)
	h.mux.HandleFunc("POST "+routeDelivered, h.report(func(ctx context.Context, b reportBody) error {
		return h.q.MarkDelivered(ctx, b.ID, b.At)
	}))
	h.mux.HandleFunc("POST "+routeFailed, h.report(func(ctx context.Context, b reportBody) error {
		return h.q.MarkFailed(ctx, b.ID, b.Owner, b.At, b.Reason)
	}))
	h.mux.HandleFunc("POST "+routeGiveUp, h.report(func(ctx context.Context, b reportBody) error {
		return h.q.GiveUp(ctx, b.ID, b.Owner, b.At, b.Reason)
	}))
	h.mux.HandleFunc("POST "+routeHostSuccess, h.hostSuccess)
	h.mux.HandleFunc("POST "+routeHostFailure, h.hostFailure)
	h.mux.HandleFunc("GET "+routeUnavailable, h.unavailable)
	h.mux.HandleFunc("GET "+routeSignatureProfile, h.signatureProfiles)
	h.mux.HandleFunc("POST "+routeSignatureProfile, h.signatureProfiles)
	return h
}

// ServeHTTP checks the bearer token, then routes.
func (h *queueHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(got))
	if !h.ok || !found || subtle.ConstantTimeCompare(sum[:], h.token[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fedforge-delivery"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxQueueBody)
	h.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Code: code})
}

// fail answers err with the status and code RemoteQueue maps back to store sentinels.
func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, err.Error())
	case errors.Is(err, store.ErrLeaseLost):
		writeError(w, http.StatusConflict, codeLeaseLost, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "malformed request body: "+err.Error())
		return false
	}
	return true
}

func (h *queueHandler) lease(w http.ResponseWriter, r *http.Request) {
	var b leaseBody
	if !decode(w, r, &b) {
		return
	}
	lease := time.Duration(b.LeaseMillis) * time.Millisecond
	if b.Owner == "" || b.Limit < 1 || b.Limit > maxLeaseRows || lease <= 0 || lease > maxLeaseSpan {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("lease needs an owner, 1..%d rows and a lease up to %s", maxLeaseRows, maxLeaseSpan))
		return
	}
	rows, err := h.q.LeaseDeliveries(r.Context(), store.LeaseRequest{Now: b.Now, Limit: b.Limit, Lease: lease, Owner: b.Owner})
	if err != nil {
		fail(w, err)
		return
	}
	if rows == nil {
		rows = []store.Delivery{}
	}
	writeJSON(w, http.StatusOK, rows)
}

func (h *queueHandler) activity(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		writeError(w, http.StatusBadRequest, codeBadRequest, "id is required")
		return
	}
	a, err := h.q.GetActivity(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// report serves one of the row reports (delivered, failed, given up): decode the body,
// apply it to the queue, answer 204.
func (h *queueHandler) report(apply func(ctx context.Context, b reportBody) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b reportBody
		if !decode(w, r, &b) {
			return
		}
		if err := apply(r.Context(), b); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *queueHandler) hostSuccess(w http.ResponseWriter, r *http.Request) {
	var b hostBody
	if !decode(w, r, &b) {
		return
	}
	if b.Host == "" {
		writeError(w, http.StatusBadRequest, codeBadRequest, "host is required")
		return
	}
	if err := h.q.RecordHostSuccess(r.Context(), b.Host, b.At); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *queueHandler) hostFailure(w http.ResponseWriter, r *http.Request) {
	var b hostBody
	if !decode(w, r, &b) {
		return
	}
	if b.Host == "" || b.Days < 1 {
		writeError(w, http.StatusBadRequest, codeBadRequest, "host and days are required")
		return
	}
	st, err := h.q.RecordHostFailure(r.Context(), b.Host, b.At, b.Days)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *queueHandler) unavailable(w http.ResponseWriter, r *http.Request) {
	hs, err := h.q.ListUnavailableHosts(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	if hs == nil {
		hs = []store.HostState{}
	}
	writeJSON(w, http.StatusOK, hs)
}

// RemoteQueue is a Queue served by another process's QueueHandler: how a delivery Job
// reaches the queue of a server whose store is a SQLite file on its own volume. It uses
// a plain net/http client, because it talks to its own server inside the cluster, not
// to the Fediverse. Idempotent calls are retried on transport errors; a lease is not
// (a lost lease answer only delays its rows until the lease expires).
type RemoteQueue struct {
	base  string
	token string
	hc    *http.Client
}

// NewRemoteQueue returns a RemoteQueue for the handler at baseURL (ending in QueuePath).
// hc may be nil for a client with a 30 s timeout.
func NewRemoteQueue(baseURL, token string, hc *http.Client) (*RemoteQueue, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("delivery: queue URL %q is not an http(s) URL", baseURL)
	}
	if token == "" {
		return nil, errors.New("delivery: the queue endpoint needs a token")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &RemoteQueue{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc}, nil
}

var _ Queue = (*RemoteQueue)(nil)

// call sends one request and decodes a JSON answer into out (when not nil).
func (q *RemoteQueue) call(ctx context.Context, method, route string, in, out any, retry bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("delivery: encoding %s request: %w", route, err)
		}
	}
	tries := 1
	if retry {
		tries = remoteRetries
	}
	var err error
	for i := range tries {
		if i > 0 {
			select {
			case <-time.After(time.Duration(200*i) * time.Millisecond):
			case <-ctx.Done():
				return fmt.Errorf("delivery: queue %s: %w", route, ctx.Err())
			}
		}
		var transient bool
		transient, err = q.once(ctx, method, route, body, out)
		if err == nil || !transient {
			return err
		}
	}
	return err
}

// once makes one attempt; transient reports a failure worth retrying.
func (q *RemoteQueue) once(ctx context.Context, method, route string, body []byte, out any) (transient bool, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, q.base+route, rd)
	if err != nil {
		return false, fmt.Errorf("delivery: queue request %s: %w", route, err)
	}
	req.Header.Set("Authorization", "Bearer "+q.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := q.hc.Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("delivery: queue %s at %s: %w", route, req.URL.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return true, fmt.Errorf("delivery: queue %s at %s: reading answer: %w", route, req.URL.Host, err)
	}
	if resp.StatusCode >= 300 {
		var eb errorBody
		_ = json.Unmarshal(data, &eb)
		msg := fmt.Sprintf("delivery: queue %s at %s answered %d: %s", route, req.URL.Host, resp.StatusCode, eb.Error)
		switch eb.Code {
		case codeNotFound:
			return false, fmt.Errorf("%s: %w", msg, store.ErrNotFound)
		case codeLeaseLost:
			return false, fmt.Errorf("%s: %w", msg, store.ErrLeaseLost)
		}
		return resp.StatusCode >= 500, errors.New(msg)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return false, fmt.Errorf("delivery: queue %s at %s: decoding answer: %w", route, req.URL.Host, err)
		}
	}
	return false, nil
}

// LeaseDeliveries implements Queue.
func (q *RemoteQueue) LeaseDeliveries(ctx context.Context, req store.LeaseRequest) ([]store.Delivery, error) {
	var out []store.Delivery
	err := q.call(ctx, http.MethodPost, routeLease, leaseBody{
		Now: req.Now, Limit: min(req.Limit, maxLeaseRows), LeaseMillis: req.Lease.Milliseconds(), Owner: req.Owner,
	}, &out, false)
	return out, err
}

// GetActivity implements Queue.
func (q *RemoteQueue) GetActivity(ctx context.Context, id string) (store.Activity, error) {
	var a store.Activity
	err := q.call(ctx, http.MethodGet, routeActivity+"?id="+url.QueryEscape(id), nil, &a, true)
	return a, err
}

// MarkDelivered implements Queue.
func (q *RemoteQueue) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	return q.call(ctx, http.MethodPost, routeDelivered, reportBody{ID: id, At: at}, nil, true)
}

// MarkFailed implements Queue; the next attempt time travels in At.
func (q *RemoteQueue) MarkFailed(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error {
	return q.call(ctx, http.MethodPost, routeFailed, reportBody{ID: id, Owner: owner, At: next, Reason: lastErr}, nil, true)
}

// GiveUp implements Queue.
func (q *RemoteQueue) GiveUp(ctx context.Context, id int64, owner string, at time.Time, reason string) error {
	return q.call(ctx, http.MethodPost, routeGiveUp, reportBody{ID: id, Owner: owner, At: at, Reason: reason}, nil, true)
}

// RecordHostSuccess implements Queue.
func (q *RemoteQueue) RecordHostSuccess(ctx context.Context, host string, at time.Time) error {
	return q.call(ctx, http.MethodPost, routeHostSuccess, hostBody{Host: host, At: at}, nil, true)
}

// RecordHostFailure implements Queue. It is not retried: a repeated failure would be
// counted twice.
func (q *RemoteQueue) RecordHostFailure(ctx context.Context, host string, at time.Time, days int) (store.HostState, error) {
	var st store.HostState
	err := q.call(ctx, http.MethodPost, routeHostFailure, hostBody{Host: host, At: at, Days: days}, &st, false)
	return st, err
}

// ListUnavailableHosts implements Queue.
func (q *RemoteQueue) ListUnavailableHosts(ctx context.Context) ([]store.HostState, error) {
	var out []store.HostState
	err := q.call(ctx, http.MethodGet, routeUnavailable, nil, &out, true)
	return out, err
}
