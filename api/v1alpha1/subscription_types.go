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

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Direction says who follows whom.
// +kubebuilder:validation:Enum=Inbound;Outbound
type Direction string

const (
	// DirectionInbound is a remote actor following a local one.
	DirectionInbound Direction = "Inbound"
	// DirectionOutbound is a local actor following a remote one.
	DirectionOutbound Direction = "Outbound"
)

// SubscriptionPhase is a printer convenience; conditions carry the truth.
// +kubebuilder:validation:Enum=Pending;AwaitingApproval;Accepted;Rejected
type SubscriptionPhase string

// Phases of a Subscription.
const (
	PhasePending          SubscriptionPhase = "Pending"
	PhaseAwaitingApproval SubscriptionPhase = "AwaitingApproval"
	PhaseAccepted         SubscriptionPhase = "Accepted"
	PhaseRejected         SubscriptionPhase = "Rejected"
)

// SubscriptionSpec declares one follow relation between a local and a remote actor.
// +kubebuilder:validation:XValidation:rule="self.direction == 'Outbound' || self.remoteActor.startsWith('https://') || self.remoteActor.startsWith('http://')",message="an Inbound subscription names the follower by its actor URI, not an acct: handle"
// +kubebuilder:validation:XValidation:rule="self.direction == 'Inbound' || !has(self.approved)",message="approved is only for Inbound subscriptions (a local actor approving a remote follower)"
type SubscriptionSpec struct {
	// direction: Inbound when a remote actor follows a local one (created by the server
	// when a Follow arrives), Outbound when a local actor follows a remote one.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="direction is immutable"
	Direction Direction `json:"direction"`

	// actorRef names the local FederatedActor (same namespace).
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="actorRef is immutable"
	ActorRef LocalObjectReference `json:"actorRef"`

	// remoteActor is the remote actor's URI (https://host/users/name) or, for Outbound
	// subscriptions, its handle as acct:name@host.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(https?://[^\s/]+(/[^\s]*)?|acct:[^\s@/]+@[^\s@/]+)$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="remoteActor is immutable: delete the Subscription and create another"
	RemoteActor string `json:"remoteActor"`

	// approved answers a follow of an actor with manuallyApprovesFollowers: true sends
	// Accept, false sends Reject. Unset means not decided yet.
	// +optional
	Approved *bool `json:"approved,omitempty"`
}

// SubscriptionStatus reports the state of the exchange with the remote actor.
type SubscriptionStatus struct {
	// phase is a summary for `kubectl get`: Pending, AwaitingApproval, Accepted, Rejected.
	// +optional
	Phase SubscriptionPhase `json:"phase,omitempty"`
	// remoteActorId is the resolved actor URI (for acct: handles, after WebFinger).
	// +optional
	RemoteActorID string `json:"remoteActorId,omitempty"`
	// remoteHost is the host of the remote actor.
	// +optional
	RemoteHost string `json:"remoteHost,omitempty"`
	// remoteInbox is the remote actor's personal inbox.
	// +optional
	RemoteInbox string `json:"remoteInbox,omitempty"`
	// remoteSharedInbox is the remote server's shared inbox, used for fan-out.
	// +optional
	RemoteSharedInbox string `json:"remoteSharedInbox,omitempty"`
	// followActivityId is the ID of the Follow activity, needed for Accept and Undo.
	// +optional
	FollowActivityID string `json:"followActivityId,omitempty"`
	// acceptedAt is when the follow was accepted.
	// +optional
	AcceptedAt *metav1.Time `json:"acceptedAt,omitempty"`
	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: ActorFound (the local actor exists), Accepted (the follow is in effect),
	// Ready (both), Reachable (False while the remote host is unavailable for delivery).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Subscription is one follow relation: a remote follower of a local actor (Inbound), or a
// remote actor a local actor follows (Outbound).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fedsub;fsub,categories=federation
// +kubebuilder:printcolumn:name="Actor",type=string,JSONPath=`.spec.actorRef.name`
// +kubebuilder:printcolumn:name="Remote",type=string,JSONPath=`.spec.remoteActor`
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.status.remoteHost`
// +kubebuilder:printcolumn:name="Direction",type=string,JSONPath=`.spec.direction`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Reachable",type=string,JSONPath=`.status.conditions[?(@.type=="Reachable")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Subscription struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the follow relation.
	// +required
	Spec SubscriptionSpec `json:"spec"`
	// status is written by the operator and the server.
	// +optional
	Status SubscriptionStatus `json:"status,omitempty"`
}

// SubscriptionList is a list of Subscriptions.
// +kubebuilder:object:root=true
type SubscriptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Subscription `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Subscription{}, &SubscriptionList{})
}
