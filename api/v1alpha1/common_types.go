/*
Copyright 2026 The Fedforge Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

// LocalObjectReference names another object in the same namespace. Fedforge never follows
// references across namespaces, so that a namespace is a complete federation tenant.
type LocalObjectReference struct {
	// name of the referenced object in the same namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// SecretKeyReference names one key of a Secret in the same namespace.
type SecretKeyReference struct {
	// name of the Secret in the same namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key within the Secret's data.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// Labels and annotations Fedforge puts on the objects it creates and reads back.
const (
	// LabelManagedBy marks every object the operator creates.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on Fedforge's objects.
	ManagedByValue = "fedforge"
	// LabelServer names the FederationServer an object belongs to.
	LabelServer = "federation.fedforge.dev/server"
	// LabelActor names the FederatedActor an object (key Secret, Subscription) belongs to.
	LabelActor = "federation.fedforge.dev/actor"
	// LabelComponent tells the server's workload objects from keys and other children.
	LabelComponent = "app.kubernetes.io/component"
	// AnnotationNoExchange on a Subscription being deleted skips its Reject (Inbound) or
	// Undo (Outbound): the remote side already ended the exchange (Undo received, actor
	// deleted), or the local actor's Delete tells the peer.
	AnnotationNoExchange = "federation.fedforge.dev/no-exchange"
	// FinalizerExchange holds a Subscription until the server has queued its Reject or
	// Undo, and a FederatedActor until its Delete has gone out to its followers. The
	// manager releases it when no server can act (server or actor gone, or unresponsive).
	FinalizerExchange = "federation.fedforge.dev/exchange"
)
