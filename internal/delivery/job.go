package delivery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// JobActor is one local actor whose key Secret is mounted in a delivery Job's pod.
type JobActor struct {
	// ID is the actor's IRI, as rows of the queue name it.
	ID string
	// Dir holds the Secret's files (rsa.key, rsa.pub, ed25519.key, ed25519.pub; see
	// internal/keys); relative paths are under JobOptions.KeysDir.
	Dir string
}

// DirKeys are the signers of actors whose key Secrets are mounted as directories. Keys
// are read and checked once, when it is made; private keys never leave the process.
type DirKeys struct {
	signers map[string]*activitypub.Signer
}

// LoadDirKeys reads each actor's key Secret from its directory (relative to base) and
// checks it with keys.FromData. The RSA key signs cavage and RFC 9421 rsa-v1_5-sha256
// with keyId <actor>#main-key, as Mastodon expects; the Ed25519 key signs RFC 9421
// ed25519 with keyId <actor>#ed25519-key for hosts whose profile asks for it.
func LoadDirKeys(base string, actors []JobActor) (*DirKeys, error) {
	k := &DirKeys{signers: make(map[string]*activitypub.Signer, len(actors))}
	for _, a := range actors {
		if a.ID == "" {
			return nil, errors.New("delivery: a job actor needs an ID")
		}
		dir := a.Dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		data := map[string][]byte{}
		for _, name := range []string{keys.RSAPrivateKey, keys.RSAPublicKey, keys.Ed25519PrivateKey, keys.Ed25519PublicKey} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("delivery: key of %s: %w", a.ID, err)
			}
			data[name] = b
		}
		pair, err := keys.FromData(data)
		if err != nil {
			return nil, fmt.Errorf("delivery: key of %s in %s: %w", a.ID, dir, err)
		}
		u := urls.Actor{ID: a.ID}
		k.signers[a.ID] = &activitypub.Signer{KeyID: u.RSAKeyID(), Key: pair.RSA, Ed25519: pair.Ed25519, Ed25519KeyID: u.Ed25519KeyID()}
	}
	return k, nil
}

// ErrNoKey is returned for an actor whose key is not mounted.
var ErrNoKey = errors.New("delivery: no key mounted for actor")

// Signer implements Keys.
func (k *DirKeys) Signer(_ context.Context, actorID string) (*activitypub.Signer, error) {
	s, ok := k.signers[actorID]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrNoKey, actorID)
	}
	return s, nil
}

// JobOptions configure one run of `fedforge deliver`.
type JobOptions struct {
	// QueueURL is the server's internal queue endpoint (ending in QueuePath); used when
	// the store is SQLite, which lives on the server's volume.
	QueueURL string
	// Token authenticates to QueueURL (from a Secret shared with the server).
	Token string
	// StoreDSN, instead of QueueURL, leases straight from PostgreSQL. SQLite DSNs are
	// refused: the file belongs to the server.
	StoreDSN string
	// KeysDir is where the actors' key Secrets are mounted (read-only).
	KeysDir string
	// Actors lists the actors whose keys are under KeysDir; a row of another actor is
	// retried later (by the server or another Job).
	Actors []JobActor
	// Client configures the outbound client (AllowedCIDRs, Resolve, timeouts...).
	Client activitypub.ClientConfig
	// MaxDuration bounds the run; what is left stays queued (default 10 min).
	MaxDuration time.Duration
	// Concurrency bounds requests in flight overall (executor default when 0).
	Concurrency int
	// PerHost bounds requests in flight to one host (executor default when 0).
	PerHost int
	// Owner names the Job's leases (default pod name plus a random suffix).
	Owner string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// Log receives structured logs.
	Log logr.Logger
}

// JobResult says what a Job did.
type JobResult struct {
	Counts
	// Rounds is how many RunOnce calls it made.
	Rounds int
	// TimedOut is set when MaxDuration ended the run with work possibly left.
	TimedOut bool
}

// maxJobRounds bounds the drain loop (each round leases until the queue is empty).
const maxJobRounds = 100

// RunJob drains what is due and returns: the entry point of `fedforge deliver`. A run
// with nothing due returns at once without error. An error means the Job could not
// work at all (bad options, keys, or the queue unreachable); rows it leased before
// failing come back when their leases expire, so a retried Job loses nothing.
func RunJob(ctx context.Context, o JobOptions) (JobResult, error) {
	var res JobResult
	q, closeQ, err := jobQueue(ctx, o)
	if err != nil {
		return res, err
	}
	defer closeQ()
	k, err := LoadDirKeys(o.KeysDir, o.Actors)
	if err != nil {
		return res, err
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 10 * time.Minute
	}
	timeout := o.Client.TotalTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	// The Job signs each host with the profile the server learnt or pinned, and keeps
	// what it learns, through the same store (the queue endpoint or PostgreSQL).
	if o.Client.Profiles == nil {
		o.Client.Profiles = profilesOf(q)
	}
	o.Client.NodeInfoProfiles = true
	exec, err := NewExecutor(Config{
		Queue: q, Client: activitypub.NewClient(o.Client), Keys: k, Owner: o.Owner,
		Concurrency: o.Concurrency, PerHost: o.PerHost, RequestTimeout: timeout,
		Lease: max(DefaultLease, 3*timeout), Now: o.Now, Log: o.Log,
	})
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.MaxDuration)
	defer cancel()
	for res.Rounds < maxJobRounds {
		n, err := exec.RunOnce(ctx)
		res.Rounds++
		res.Counts = exec.Counts()
		if ctx.Err() != nil {
			res.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
			return res, nil
		}
		if err != nil {
			return res, err
		}
		if n == 0 {
			break
		}
	}
	return res, nil
}

// profilesOf is where a Job's client keeps signature profiles: the queue endpoint, or
// the PostgreSQL store it leases from.
func profilesOf(q Queue) activitypub.ProfileStore {
	switch q := q.(type) {
	case activitypub.ProfileStore:
		return q
	case store.SignatureProfiles:
		return StoreProfiles{S: q}
	}
	return nil
}

// jobQueue opens the queue a Job leases from.
func jobQueue(ctx context.Context, o JobOptions) (Queue, func(), error) {
	switch {
	case o.QueueURL != "" && o.StoreDSN != "":
		return nil, nil, errors.New("delivery: a job takes either a queue URL or a store DSN, not both")
	case o.QueueURL != "":
		q, err := NewRemoteQueue(o.QueueURL, o.Token, nil)
		return q, func() {}, err
	case strings.HasPrefix(o.StoreDSN, "postgres://"), strings.HasPrefix(o.StoreDSN, "postgresql://"):
		s, err := store.Open(ctx, o.StoreDSN)
		if err != nil {
			return nil, nil, fmt.Errorf("delivery: opening the store: %w", err)
		}
		return s, func() { s.Close() }, nil
	case o.StoreDSN != "":
		return nil, nil, errors.New("delivery: a job cannot open a SQLite store (it belongs to the server's volume); use the queue URL")
	}
	return nil, nil, errors.New("delivery: a job needs a queue URL or a PostgreSQL DSN")
}
