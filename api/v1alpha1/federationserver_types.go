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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Scheme is the URL scheme a FederationServer is reached under.
// +kubebuilder:validation:Enum=https;http
type Scheme string

const (
	// SchemeHTTPS is the only scheme other Fediverse servers accept in production.
	SchemeHTTPS Scheme = "https"
	// SchemeHTTP is for local development and tests on loopback.
	SchemeHTTP Scheme = "http"
)

// FederationServerSpec declares one Fediverse instance: the public host its actors live
// under and how its `fedforge server` workload runs.
// +kubebuilder:validation:XValidation:rule="self.replicas <= 1 || (has(self.storage) && has(self.storage.postgres))",message="replicas > 1 needs storage.postgres: SQLite on a ReadWriteOnce volume can serve one replica only"
// +kubebuilder:validation:XValidation:rule="self.scheme == 'https' || !has(self.ingress) || !has(self.ingress.tlsSecretName)",message="ingress.tlsSecretName needs scheme https"
type FederationServerSpec struct {
	// host is the public DNS name of the instance, as it appears in actor IDs and in
	// `acct:user@host` handles, optionally with a port for local use (127.0.0.1:8080).
	// It cannot change: every remote follower stores IDs under it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=259
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="host is immutable: remote followers store actor IDs under it"
	Host string `json:"host"`

	// scheme of the public URL. Peers such as Mastodon only federate over https; http is
	// for local development on loopback.
	// +optional
	// +kubebuilder:default=https
	Scheme Scheme `json:"scheme,omitempty"`

	// replicas of the server Deployment. More than one needs PostgreSQL storage.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	Replicas int32 `json:"replicas,omitempty"`

	// image of the `fedforge server` container; defaults to the operator's own image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^\s]+$`
	Image string `json:"image,omitempty"`

	// resources of the server container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// storage of the activity log, received activities, caches and the delivery queue.
	// SQLite on a PersistentVolumeClaim by default.
	// +optional
	Storage *ServerStorage `json:"storage,omitempty"`

	// ingress, when set, exposes the server under host through an Ingress.
	// +optional
	Ingress *ServerIngress `json:"ingress,omitempty"`

	// allowedPrivateCIDRs lists address ranges that outbound requests may reach although
	// they are loopback, private or otherwise special. Empty by default, which refuses
	// them all (SSRF protection); local development sets 127.0.0.0/8.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="each allowedPrivateCIDRs entry must be a CIDR such as 10.0.0.0/8"
	AllowedPrivateCIDRs []string `json:"allowedPrivateCIDRs,omitempty"`

	// delivery tunes how activities reach followers' inboxes.
	// +optional
	Delivery *DeliverySpec `json:"delivery,omitempty"`

	// signatures pins how requests to chosen peer hosts are signed. Without a pin each
	// host's signature profile is learnt (first knock, Accept-Signature, the peer's own
	// RFC 9421 signatures, NodeInfo) and stored; `fedforge signatures` lists them.
	// +optional
	Signatures *SignatureSpec `json:"signatures,omitempty"`

	// authorizedFetch ("secure mode", as Mastodon's and GoToSocial's) requires a valid
	// HTTP signature on GET requests for actor documents and collections (outbox,
	// followers, following); 401 otherwise. The public key itself, WebFinger, NodeInfo
	// and host-meta stay public, so that peers can verify and discover.
	// +optional
	AuthorizedFetch bool `json:"authorizedFetch,omitempty"`
}

// SignatureSpec configures outbound HTTP signatures.
type SignatureSpec struct {
	// pins fixes the signature profile of peer hosts: a pinned host is signed with its
	// profile only, never double-knocked, and its profile is never relearnt.
	// +optional
	// +listType=map
	// +listMapKey=host
	// +kubebuilder:validation:MaxItems=256
	Pins []SignaturePin `json:"pins,omitempty"`
}

// SignaturePin is the signature profile of one peer host.
type SignaturePin struct {
	// host is the peer's host name, with the port when it is not the default.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=259
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$`
	Host string `json:"host"`

	// profile is how requests to host are signed: cavage (draft-cavage rsa-sha256, what
	// every Mastodon-era peer takes), rfc9421-rsa (RFC 9421 rsa-v1_5-sha256 with the RSA
	// key) or rfc9421-ed25519 (RFC 9421 ed25519 with the Ed25519 Multikey).
	// +required
	Profile SignatureProfileName `json:"profile"`
}

// SignatureProfileName names an outbound signature profile.
// +kubebuilder:validation:Enum=cavage;rfc9421-rsa;rfc9421-ed25519
type SignatureProfileName string

// ServerStorage chooses where a server keeps its store.
// +kubebuilder:validation:XValidation:rule="!(has(self.sqlite) && has(self.postgres))",message="storage takes sqlite or postgres, not both"
type ServerStorage struct {
	// sqlite keeps the store in a SQLite file on a PersistentVolumeClaim (the default).
	// +optional
	SQLite *SQLiteStorage `json:"sqlite,omitempty"`

	// postgres keeps the store in PostgreSQL; needed for more than one replica.
	// +optional
	Postgres *PostgresStorage `json:"postgres,omitempty"`
}

// SQLiteStorage sizes the volume that holds the SQLite file.
type SQLiteStorage struct {
	// size of the PersistentVolumeClaim.
	// +optional
	// +kubebuilder:default="1Gi"
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName of the PersistentVolumeClaim; the cluster default when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// PostgresStorage points at a Secret holding a PostgreSQL connection string.
type PostgresStorage struct {
	// dsnSecretRef names the Secret key holding a `postgres://` URL (key defaults to "dsn").
	// +required
	DSNSecretRef SecretKeyReference `json:"dsnSecretRef"`
}

// ServerIngress exposes the server through an Ingress for host.
type ServerIngress struct {
	// className is the IngressClass to use; the cluster default when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ClassName *string `json:"className,omitempty"`

	// tlsSecretName is a Secret of type kubernetes.io/tls holding the certificate for host.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	TLSSecretName string `json:"tlsSecretName,omitempty"`

	// annotations added to the Ingress, for example a cert-manager issuer.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Annotations map[string]string `json:"annotations,omitempty"`
}

// FederationServerStatus reports where the server is reachable and whether it runs.
type FederationServerStatus struct {
	// url is the public base URL, scheme://host.
	// +optional
	URL string `json:"url,omitempty"`

	// readyReplicas of the server Deployment.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// delivery summarises the server's delivery queue, written by the server at most
	// once a minute.
	// +optional
	Delivery *DeliveryStatus `json:"delivery,omitempty"`

	// forgeWrites summarises the server's forge-write queue: issues and comments asked
	// for from the Fediverse that wait to be written into a forge (a forge that is down
	// delays them). Written by the server with status.delivery.
	// +optional
	ForgeWrites *ForgeWriteStatus `json:"forgeWrites,omitempty"`

	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (the server answers; reason LocalMode when it runs outside the
	// cluster under `make run`), WorkloadReady (Deployment, Service, storage in place),
	// DeliveryJobsReady (the delivery token exists and Jobs can be started). A failed
	// reconcile sets its condition False with the reason and the error as message.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DeliverySpec tunes delivery. The server delivers in process; when many deliveries are
// due (a large fan-out, or retries piling up after an outage) the operator adds delivery
// Jobs running `fedforge deliver`, which lease batches from the server's queue.
type DeliverySpec struct {
	// jobThreshold is the number of due deliveries, as the server reports in
	// status.delivery.due, from which the operator starts a delivery Job (one at a time).
	// +optional
	// +kubebuilder:default=500
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000000
	JobThreshold *int32 `json:"jobThreshold,omitempty"`

	// inProcess lets the server deliver in its own process (the default). false leaves
	// every delivery to Jobs, for servers whose fan-outs should not share the inbox's
	// CPU; deliveries then wait for the next status report (at most a minute) and a Job.
	// +optional
	// +kubebuilder:default=true
	InProcess *bool `json:"inProcess,omitempty"`

	// lease is how long a worker owns the delivery rows it took: a replica that dies
	// (SIGKILL, OOM, node loss) leaves its rows to the others once it ends, so it bounds
	// how late those deliveries are after a crash. At least 90s (three request timeouts);
	// 5m when unset.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('90s')",message="lease must be at least 90s (three 30s request timeouts)"
	Lease *metav1.Duration `json:"lease,omitempty"`

	// jobResources are the delivery Job's container resources; requests of 100m CPU
	// and 64Mi and limits of 1 CPU and 256Mi when unset.
	// +optional
	JobResources *corev1.ResourceRequirements `json:"jobResources,omitempty"`
}

// DeliveryStatus is a summary of the durable delivery queue of a server.
type DeliveryStatus struct {
	// pending deliveries will be attempted (due now, leased, or waiting for a retry).
	// +optional
	Pending int64 `json:"pending,omitempty"`
	// due deliveries can be attempted now.
	// +optional
	Due int64 `json:"due,omitempty"`
	// retrying deliveries failed at least once and wait for their next attempt.
	// +optional
	Retrying int64 `json:"retrying,omitempty"`
	// delivered deliveries got a 2xx and are kept to refuse re-sending.
	// +optional
	Delivered int64 `json:"delivered,omitempty"`
	// dead deliveries were given up on (permanent refusal or retries exhausted).
	// +optional
	Dead int64 `json:"dead,omitempty"`
	// unavailableHosts is the number of hosts marked unavailable (failures on 7 days).
	// +optional
	UnavailableHosts int32 `json:"unavailableHosts,omitempty"`
	// unavailableSample names up to 10 unavailable hosts.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:MaxLength=253
	UnavailableSample []string `json:"unavailableSample,omitempty"`
	// observedAt is when the queue was read.
	// +optional
	ObservedAt *metav1.Time `json:"observedAt,omitempty"`
}

// ForgeWriteStatus is a summary of the durable forge-write queue of a server.
type ForgeWriteStatus struct {
	// pending writes will be attempted (due now, being written, or waiting for a retry).
	// +optional
	Pending int64 `json:"pending,omitempty"`
	// retrying writes failed at least once (the forge was down or refused the token)
	// and wait for their next attempt; the server logs each failure with the forge's
	// answer.
	// +optional
	Retrying int64 `json:"retrying,omitempty"`
	// dead writes were given up on (the forge refused them for good, or they were
	// retried for a week); each one is also a Warning Event on its actor.
	// +optional
	Dead int64 `json:"dead,omitempty"`
	// oldestPendingSince is when the oldest pending write was queued.
	// +optional
	OldestPendingSince *metav1.Time `json:"oldestPendingSince,omitempty"`
}

// FederationServer is one Fediverse instance served by `fedforge server`: a public host,
// its actors, inboxes and outboxes.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fedserver;fsrv,categories=federation
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.host`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,priority=1
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Queued",type=integer,JSONPath=`.status.delivery.pending`
// +kubebuilder:printcolumn:name="Unavailable",type=integer,JSONPath=`.status.delivery.unavailableHosts`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FederationServer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the instance.
	// +required
	Spec FederationServerSpec `json:"spec"`
	// status is written by the operator.
	// +optional
	Status FederationServerStatus `json:"status,omitempty"`
}

// FederationServerList is a list of FederationServers.
// +kubebuilder:object:root=true
type FederationServerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FederationServer `json:"items"`
}

// BaseURL is the public base URL of the server, scheme://host, with no trailing slash.
func (s *FederationServer) BaseURL() string {
	scheme := s.Spec.Scheme
	if scheme == "" {
		scheme = SchemeHTTPS
	}
	return string(scheme) + "://" + s.Spec.Host
}

func init() {
	SchemeBuilder.Register(&FederationServer{}, &FederationServerList{})
}
