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

// PolicyMode says whether hosts lists the peers allowed or the peers refused.
// +kubebuilder:validation:Enum=Allowlist;Denylist
type PolicyMode string

const (
	// PolicyAllowlist refuses every host not listed.
	PolicyAllowlist PolicyMode = "Allowlist"
	// PolicyDenylist refuses the hosts listed (and the imported blocklist).
	PolicyDenylist PolicyMode = "Denylist"
)

// FederationPolicySpec declares which peers a FederationServer talks to and how much.
// +kubebuilder:validation:XValidation:rule="self.mode == 'Denylist' || (has(self.hosts) && size(self.hosts) > 0)",message="Allowlist mode needs at least one host: an empty allowlist would refuse every peer"
// +kubebuilder:validation:XValidation:rule="self.mode == 'Denylist' || !has(self.blocklistRef)",message="blocklistRef imports hosts to refuse, so it is only allowed in Denylist mode"
type FederationPolicySpec struct {
	// targetRef names the FederationServer (same namespace) this policy applies to.
	// Several policies may target one server; a host refused by any of them is refused.
	// +required
	TargetRef LocalObjectReference `json:"targetRef"`

	// mode: Allowlist refuses every host not in hosts; Denylist refuses the hosts in hosts
	// and in the imported blocklist.
	// +optional
	// +kubebuilder:default=Denylist
	Mode PolicyMode `json:"mode,omitempty"`

	// hosts are exact host names (mastodon.example) or wildcards for a domain and all its
	// subdomains (*.example.org).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5000
	// +kubebuilder:validation:items:MaxLength=255
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$`
	Hosts []string `json:"hosts,omitempty"`

	// limits bound how many follows the server accepts.
	// +optional
	Limits *PolicyLimits `json:"limits,omitempty"`

	// blocklistRef imports hosts to refuse from a ConfigMap key in Mastodon's domain
	// blocklist CSV format (`#domain,#severity,...`); rows of severity "suspend" are refused.
	// +optional
	BlocklistRef *ConfigMapKeyReference `json:"blocklistRef,omitempty"`
}

// PolicyLimits bounds the follows a server accepts; a follow over a limit gets a Reject.
type PolicyLimits struct {
	// maxFollowersPerActor is the most accepted followers one local actor may have.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000
	MaxFollowersPerActor *int32 `json:"maxFollowersPerActor,omitempty"`

	// maxSubscriptionsPerHost is the most Subscriptions one remote host may hold.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000
	MaxSubscriptionsPerHost *int32 `json:"maxSubscriptionsPerHost,omitempty"`

	// requestsPerMinutePerHost caps inbox requests from one remote host; 0 means no cap.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	RequestsPerMinutePerHost *int32 `json:"requestsPerMinutePerHost,omitempty"`
}

// ConfigMapKeyReference names one key of a ConfigMap in the same namespace.
type ConfigMapKeyReference struct {
	// name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key in the ConfigMap's data.
	// +optional
	// +kubebuilder:default="blocklist.csv"
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// RefusedCounts counts the exchanges a policy refused, as reported by the server.
type RefusedCounts struct {
	// follows refused by host rules or limits.
	// +optional
	Follows int64 `json:"follows,omitempty"`
	// requests (any inbox POST or signed fetch) refused by host rules or rate limits.
	// +optional
	Requests int64 `json:"requests,omitempty"`
	// deliveries not sent because the target host is refused.
	// +optional
	Deliveries int64 `json:"deliveries,omitempty"`
	// lastRefusedAt is when the most recent refusal happened.
	// +optional
	LastRefusedAt *metav1.Time `json:"lastRefusedAt,omitempty"`
}

// FederationPolicyStatus reports whether the policy is in force and what it refused.
type FederationPolicyStatus struct {
	// attached is true when the target FederationServer exists.
	// +optional
	Attached bool `json:"attached"`
	// blocklistEntries is the number of hosts imported from blocklistRef.
	// +optional
	BlocklistEntries int32 `json:"blocklistEntries,omitempty"`
	// refused counts what the server refused under this policy; written at most once a
	// minute.
	// +optional
	Refused RefusedCounts `json:"refused,omitempty"`
	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Attached (the target server exists), BlocklistLoaded (the blocklist
	// ConfigMap was read and parsed), Ready (both), all written by the operator; and
	// Enforced, written by the target server once it evaluates requests with the policy's
	// current generation.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// FederationPolicy is an allowlist or denylist of peer hosts, with limits, enforced by a
// FederationServer on every inbound and outbound exchange.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fedpolicy;fpol,categories=federation
// +kubebuilder:printcolumn:name="Server",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Attached",type=boolean,JSONPath=`.status.attached`
// +kubebuilder:printcolumn:name="Enforced",type=string,JSONPath=`.status.conditions[?(@.type=="Enforced")].status`
// +kubebuilder:printcolumn:name="Refused",type=integer,JSONPath=`.status.refused.requests`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FederationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the policy.
	// +required
	Spec FederationPolicySpec `json:"spec"`
	// status is written by the operator and the server.
	// +optional
	Status FederationPolicyStatus `json:"status,omitempty"`
}

// FederationPolicyList is a list of FederationPolicies.
// +kubebuilder:object:root=true
type FederationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FederationPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&FederationPolicy{}, &FederationPolicyList{})
}
