package server

import (
	"context"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/delivery"
)

// flushRefusals writes refusal counts into FederationPolicy status (and one Event per
// policy that refused something) once per status interval (a minute by default; tests
// shorten it).
func (s *Server) flushRefusals(ctx context.Context) error {
	every := s.opts.StatusInterval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.fed.refused.flush(flush, s.fed.kube, s.opts.Server.Namespace)
			cancel()
			return nil
		case <-t.C:
			if err := s.fed.refused.flush(ctx, s.fed.kube, s.opts.Server.Namespace); err != nil {
				s.fed.log.Info("writing refusal counts failed; kept for the next minute", "error", err.Error())
			}
		}
	}
}

// reportDelivery writes the delivery queue's summary into the FederationServer's status
// once a minute (on the elected replica), so `kubectl get federationservers` shows what is
// queued and which hosts are unavailable, at a bounded cost to the API server.
func (s *Server) reportDelivery(ctx context.Context) error {
	if !s.cache.WaitForCacheSync(ctx) {
		return nil
	}
	every := s.opts.StatusInterval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.writeDeliveryStatus(ctx); err != nil && ctx.Err() == nil {
			s.fed.log.Info("writing the delivery summary failed; retrying in a minute", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Server) writeDeliveryStatus(ctx context.Context) error {
	sum, err := delivery.Summarize(ctx, s.opts.Store, s.opts.Now())
	if err != nil {
		return err
	}
	var fs fedv1.FederationServer
	if err := s.cache.Get(ctx, s.opts.Server, &fs); err != nil {
		return client.IgnoreNotFound(err)
	}
	at := metav1.NewTime(sum.ObservedAt.UTC().Truncate(time.Second))
	base := fs.DeepCopy()
	fs.Status.Delivery = &fedv1.DeliveryStatus{
		Pending: sum.Pending, Due: sum.Due, Retrying: sum.Retrying, Delivered: sum.Delivered, Dead: sum.Dead,
		UnavailableHosts: int32(sum.UnavailableHosts), UnavailableSample: sum.UnavailableSample, ObservedAt: &at,
	}
	if err := s.fed.kube.Status().Patch(ctx, &fs, client.MergeFrom(base)); err != nil {
		return err
	}
	return s.markReachability(ctx)
}

// markReachability sets the Reachable condition of Subscriptions whose host is marked
// unavailable (False), and flips it back (True) when the host is heard from again. A
// Subscription that never had a problem gets no condition, so a healthy server with many
// followers costs no writes here.
func (s *Server) markReachability(ctx context.Context) error {
	hosts, err := s.opts.Store.ListUnavailableHosts(ctx)
	if err != nil {
		return err
	}
	down := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		down[h.Host] = true
	}
	var list fedv1.SubscriptionList
	if err := s.cache.List(ctx, &list, client.InNamespace(s.opts.Server.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	for i := range list.Items {
		sub := &list.Items[i]
		host := sub.Status.RemoteHost
		if host == "" {
			continue
		}
		unavailable := down[host] || down[strings.Split(host, ":")[0]]
		c := meta.FindStatusCondition(sub.Status.Conditions, fedv1.ConditionReachable)
		if (c == nil && !unavailable) || (c != nil && (c.Status == metav1.ConditionFalse) == unavailable) {
			continue
		}
		if err := s.fed.subs.patchStatus(ctx, client.ObjectKeyFromObject(sub), func(x *fedv1.Subscription) {
			cond := metav1.Condition{Type: fedv1.ConditionReachable, Status: metav1.ConditionTrue, Reason: fedv1.ReasonHostAvailable,
				Message: host + " answers deliveries again", ObservedGeneration: x.Generation}
			if unavailable {
				cond.Status, cond.Reason = metav1.ConditionFalse, fedv1.ReasonHostUnavailable
				cond.Message = "deliveries to " + host + " failed on 7 distinct days; they resume when it is heard from"
			}
			meta.SetStatusCondition(&x.Status.Conditions, cond)
		}); err != nil {
			return err
		}
		s.fed.reachability(sub, host, unavailable)
	}
	return nil
}
