package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/event"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// Short local names for the API kinds, to keep reconcilers readable.
type (
	actorT        = fedv1.FederatedActor
	serverT       = fedv1.FederationServer
	policyT       = fedv1.FederationPolicy
	subscriptionT = fedv1.Subscription
)

// eventUpdate is the update event of controller-runtime's predicates.
type eventUpdate = event.UpdateEvent
