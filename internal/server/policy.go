package server

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/policy"
)

// Kinds of refusal, as FederationPolicy status counts them.
const (
	refusedFollow   = "follow"
	refusedRequest  = "request"
	refusedDelivery = "delivery"
)

// verdict is what the attached policies say about one remote host.
type verdict struct {
	allowed bool
	// by names the policies that refuse the host, for counting.
	by []string
	// limitedBy names the policies that set limits, for counting limit refusals.
	limitedBy []string
	// limits are the tightest limits of all attached policies (nil: none).
	maxFollowersPerActor    *int32
	maxSubscriptionsPerHost *int32
	requestsPerMinute       int32
}

// policies evaluates the FederationPolicies attached to this server. The compiled form is
// rebuilt only when a policy or its blocklist ConfigMap changes (by resourceVersion).
type policies struct {
	reader client.Reader
	srv    types.NamespacedName

	mu       sync.Mutex
	version  string
	compiled []compiledPolicy
	limiters map[string]*rate.Limiter
	// compiledAt is the epoch read before the List the compiled set was built from
	// (policy_cache.go): the set is used without a List while the epoch is unchanged.
	compiledAt uint64

	// epoch counts the informer's policy and ConfigMap events and invalidations;
	// watched is set once the handlers are registered.
	epoch   atomic.Uint64
	watched atomic.Bool
	// blocklists is set (under mu) when the kept set names a blocklist ConfigMap: it is
	// used without a List only once ConfigMaps are watched too (blocklistsWatched).
	blocklists        bool
	blocklistsWatched atomic.Bool
	cmOnce            sync.Once
	informers         cache.Cache
}

type compiledPolicy struct {
	name    string
	matcher *policy.Matcher
	limits  *fedv1.PolicyLimits
}

// evaluate returns the verdict on host (a host name, with or without port).
func (p *policies) evaluate(ctx context.Context, host string) (verdict, error) {
	cs, err := p.current(ctx)
	if err != nil {
		return verdict{}, err
	}
	return verdictFor(cs, host), nil
}

// verdictFor evaluates compiled policies for one host, so that a fan-out loads the
// policies once and evaluates each follower's host against them.
func verdictFor(cs []compiledPolicy, host string) verdict {
	v := verdict{allowed: true}
	for _, c := range cs {
		if !c.matcher.Allowed(host) {
			v.allowed = false
			v.by = append(v.by, c.name)
		}
		if l := c.limits; l != nil {
			v.limitedBy = append(v.limitedBy, c.name)
			v.maxFollowersPerActor = minLimit(v.maxFollowersPerActor, l.MaxFollowersPerActor)
			v.maxSubscriptionsPerHost = minLimit(v.maxSubscriptionsPerHost, l.MaxSubscriptionsPerHost)
			if r := l.RequestsPerMinutePerHost; r != nil && *r > 0 && (v.requestsPerMinute == 0 || *r < v.requestsPerMinute) {
				v.requestsPerMinute = *r
			}
		}
	}
	return v
}

// allowRequest applies the per-host request rate limit: a token bucket of the given
// requests per minute, with a burst of the same size.
func (p *policies) allowRequest(host string, perMinute int32, now time.Time) bool {
	if perMinute <= 0 {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limiters == nil {
		p.limiters = map[string]*rate.Limiter{}
	}
	l, ok := p.limiters[host]
	if !ok || l.Burst() != int(perMinute) {
		if len(p.limiters) > 100000 { // bound memory under a flood of hosts
			p.limiters = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Limit(float64(perMinute)/60), int(perMinute))
		p.limiters[host] = l
	}
	return l.AllowN(now, 1)
}

func minLimit(cur, next *int32) *int32 {
	if next == nil || (cur != nil && *cur <= *next) {
		return cur
	}
	return next
}

// load returns the compiled policies, recompiling when any input changed. It runs on
// every inbox POST, so it reads the cache without deep copies (it only reads, and the
// compiled form keeps nothing but Limits, which the informer replaces, never mutates):
// the copies of the policies and the blocklist ConfigMap were about 4 % of a POST's CPU.
func (p *policies) load(ctx context.Context) ([]compiledPolicy, error) {
	epoch := p.epoch.Load() // before the List: an event after it makes the result stale
	var list fedv1.FederationPolicyList
	if err := p.reader.List(ctx, &list, client.InNamespace(p.srv.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var attached []fedv1.FederationPolicy
	for _, pol := range list.Items {
		if pol.Spec.TargetRef.Name == p.srv.Name && pol.DeletionTimestamp == nil {
			attached = append(attached, pol)
		}
	}
	sort.Slice(attached, func(i, j int) bool { return attached[i].Name < attached[j].Name })
	blocklists := slices.ContainsFunc(attached, func(pol fedv1.FederationPolicy) bool { return pol.Spec.BlocklistRef != nil })
	if blocklists {
		p.watchBlocklists(ctx) // before the Gets: a later change of the list is an event
	}
	var ver strings.Builder
	cms := map[string]*corev1.ConfigMap{}
	for _, pol := range attached {
		ver.WriteString(pol.Name + "@" + pol.ResourceVersion + ";")
		if ref := pol.Spec.BlocklistRef; ref != nil {
			var cm corev1.ConfigMap
			if err := p.reader.Get(ctx, types.NamespacedName{Namespace: p.srv.Namespace, Name: ref.Name}, &cm, client.UnsafeDisableDeepCopy); err == nil {
				cms[ref.Name] = &cm
				ver.WriteString("cm:" + ref.Name + "@" + cm.ResourceVersion + ";")
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.compiled != nil && p.version == ver.String() {
		p.compiledAt = max(p.compiledAt, epoch)
		p.blocklists = blocklists
		return p.compiled, nil
	}
	out := make([]compiledPolicy, 0, len(attached))
	for _, pol := range attached {
		r := policy.Rules{Mode: policy.Denylist, Hosts: pol.Spec.Hosts}
		if pol.Spec.Mode == fedv1.PolicyAllowlist {
			r.Mode = policy.Allowlist
		}
		if ref := pol.Spec.BlocklistRef; ref != nil {
			if cm := cms[ref.Name]; cm != nil {
				key := ref.Key
				if key == "" {
					key = "blocklist.csv"
				}
				// An unreadable list is reported by the operator in the policy's
				// BlocklistLoaded condition; the server enforces what it can read.
				if entries, err := policy.ParseBlocklist(strings.NewReader(cm.Data[key])); err == nil {
					r.Blocklist = entries
				}
			}
		}
		out = append(out, compiledPolicy{name: pol.Name, matcher: policy.Compile(r), limits: pol.Spec.Limits})
	}
	if epoch >= p.compiledAt { // a load that began earlier does not replace a later one
		p.version, p.compiled, p.compiledAt, p.blocklists = ver.String(), out, epoch, blocklists
	}
	return out, nil
}

// refusals counts what the policies refused and writes the counts into their status at
// most once per interval, so a flood of refused requests costs no API-server writes
// beyond one patch a minute per policy.
type refusals struct {
	// recorder, when set, gets one Refused Event per policy and flush (events.go).
	recorder events.EventRecorder
	mu       sync.Mutex
	pending  map[string]*fedv1.RefusedCounts
}

// add counts one refusal of kind against each named policy.
func (r *refusals) add(kind string, at time.Time, by ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[string]*fedv1.RefusedCounts{}
	}
	for _, name := range by {
		c := r.pending[name]
		if c == nil {
			c = &fedv1.RefusedCounts{}
			r.pending[name] = c
		}
		switch kind {
		case refusedFollow:
			c.Follows++
		case refusedRequest:
			c.Requests++
		case refusedDelivery:
			c.Deliveries++
		}
		t := metav1.NewTime(at.UTC().Truncate(time.Second))
		c.LastRefusedAt = &t
	}
}

// flush adds the pending counts to each policy's status; counts that could not be
// written stay pending for the next flush.
func (r *refusals) flush(ctx context.Context, c client.Client, ns string) error {
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	var firstErr error
	for name, delta := range pending {
		var pol fedv1.FederationPolicy
		err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &pol)
		if err == nil {
			base := pol.DeepCopy()
			pol.Status.Refused.Follows += delta.Follows
			pol.Status.Refused.Requests += delta.Requests
			pol.Status.Refused.Deliveries += delta.Deliveries
			pol.Status.Refused.LastRefusedAt = delta.LastRefusedAt
			err = c.Status().Patch(ctx, &pol, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
			if err == nil {
				r.event(&pol, delta)
			}
		}
		if client.IgnoreNotFound(err) != nil {
			if firstErr == nil {
				firstErr = err
			}
			r.mu.Lock()
			if r.pending == nil {
				r.pending = map[string]*fedv1.RefusedCounts{}
			}
			if cur := r.pending[name]; cur != nil {
				cur.Follows += delta.Follows
				cur.Requests += delta.Requests
				cur.Deliveries += delta.Deliveries
			} else {
				r.pending[name] = delta
			}
			r.mu.Unlock()
		}
	}
	return firstErr
}
