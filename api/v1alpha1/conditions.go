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

// Every condition type and reason Fedforge writes, in one place, so that a reader (or a
// `kubectl wait --for=condition=…` script) finds the whole vocabulary here and no
// package invents a string of its own. The operator (controllers/) and the server
// (internal/server) both write conditions; each constant says who writes it.
//
// Rule for the operator's reconcilers (docs/decisions.md, "Conditions"): status is
// patched in a deferred function, so that an error sets the condition the reconciler
// owns to False with a failure reason below and the error as its message, and success
// sets it True with the object's generation as observedGeneration. A condition is never
// left True by a reconcile that failed.

// Condition types.
const (
	// ConditionReady sums an object up: True when it is fully in effect. Written by the
	// operator on every kind.
	ConditionReady = "Ready"

	// ConditionWorkloadReady (FederationServer, operator) is True when the server's
	// Deployment, Service, storage and RBAC are applied; False with ReasonApplyFailed or
	// ReasonReconcileFailed when writing them failed.
	ConditionWorkloadReady = "WorkloadReady"
	// ConditionDeliveryJobsReady (FederationServer, operator) is True when the delivery
	// token Secret exists and delivery Jobs can be started when the queue grows; False
	// with ReasonCreateFailed or ReasonReconcileFailed otherwise.
	ConditionDeliveryJobsReady = "DeliveryJobsReady"
	// ConditionStoreReady (FederationServer, server process) is True when a server replica
	// opened its store (connected, schema migrated, host claimed); False with
	// ReasonStoreUnavailable, ReasonSchemaTooNew or ReasonStoreHostMismatch and the
	// driver's message while it cannot, which it retries with backoff instead of
	// crash-looping. The operator turns Ready False with the same reason and message.
	ConditionStoreReady = "StoreReady"

	// ConditionKeyReady (FederatedActor, operator) is True when the key Secret holds valid
	// keys that match the key policy; False when reading, making or writing them failed.
	ConditionKeyReady = "KeyReady"

	// ConditionForgeReachable (FederatedActor, operator) is set only when spec.forge is:
	// True when an authenticated read of the project on the forge succeeded, False with
	// ReasonTokenMissing, ReasonForgeUnauthorized, ReasonForgeUnreachable or
	// ReasonForgeNotSupported and the forge's own answer as the message. It says that
	// reading works; whether the token may write is only known when a write is tried.
	// It does not change Ready: the actor is served either way.
	ConditionForgeReachable = "ForgeReachable"

	// ConditionMoved (FederatedActor, server) is set only when spec.movedTo is: True with
	// ReasonMoveSent once the target actor named this one in alsoKnownAs and the Move was
	// queued for every follower; False with ReasonMoveTargetUnconfirmed,
	// ReasonMoveTargetUnreachable or ReasonMoveTargetInvalid while it was not sent. It
	// does not change Ready: a moved actor is still served.
	ConditionMoved = "Moved"

	// ConditionAttached (FederationPolicy, operator) is True when the target server exists.
	ConditionAttached = "Attached"
	// ConditionBlocklistLoaded (FederationPolicy, operator) is True when the blocklist was
	// read and parsed (or none is set).
	ConditionBlocklistLoaded = "BlocklistLoaded"
	// ConditionEnforced (FederationPolicy, server) is True once the target server evaluates
	// requests with the policy's current generation (observedGeneration), so that
	// `kubectl wait --for=condition=Enforced` returns when a change is in force.
	ConditionEnforced = "Enforced"

	// ConditionActorFound (Subscription, operator) is True when the local actor exists.
	ConditionActorFound = "ActorFound"
	// ConditionAccepted (Subscription, server) is True when the follow is in effect.
	ConditionAccepted = "Accepted"
	// ConditionReachable (Subscription, server) is False while the remote host is marked
	// unavailable (deliveries failed on 7 distinct days), and True again once it is heard
	// from; absent until then.
	ConditionReachable = "Reachable"
)

// Reasons shared by several conditions.
const (
	// ReasonReconciled says the controller brought the world in line with the spec.
	ReasonReconciled = "Reconciled"
	// ReasonApplyFailed says writing a child object with server-side apply failed (an
	// object of the same name controlled by someone else, an admission webhook, a quota);
	// the message is the API server's answer.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonCreateFailed says creating a child object failed (the delivery token Secret,
	// a delivery Job); the message is the API server's answer.
	ReasonCreateFailed = "CreateFailed"
	// ReasonReconcileFailed says a reconcile failed for another reason (reading from the
	// API server, making keys); the message is the error. The reconcile is retried with
	// backoff.
	ReasonReconcileFailed = "ReconcileFailed"
	// ReasonServerNotFound says the referenced FederationServer does not exist.
	ReasonServerNotFound = "ServerNotFound"
	// ReasonActorNotFound says the referenced FederatedActor does not exist.
	ReasonActorNotFound = "ActorNotFound"
)

// Reasons of FederationServer conditions.
const (
	// ReasonLocalMode (Ready, WorkloadReady) says the server runs outside the cluster as a
	// local process (make run), so no workload is created.
	ReasonLocalMode = "LocalMode"
	// ReasonReplicasNotReady (Ready) says fewer replicas are ready or up to date than
	// asked for.
	ReasonReplicasNotReady = "ReplicasNotReady"
	// ReasonRollingOut (Ready) says a new pod template is rolling out: the message counts
	// the replicas updated and ready.
	ReasonRollingOut = "RollingOut"
	// ReasonStoreOpened (StoreReady) says the server opened its store.
	ReasonStoreOpened = "StoreOpened"
	// ReasonStoreUnavailable (StoreReady, Ready) says the store could not be opened: a
	// wrong password, an unreachable database, a full disk; the message is the driver's.
	ReasonStoreUnavailable = "StoreUnavailable"
	// ReasonSchemaTooNew (StoreReady, Ready) says the database was migrated by a newer
	// Fedforge than the server's image.
	ReasonSchemaTooNew = "SchemaTooNew"
	// ReasonStoreHostMismatch (StoreReady, Ready) says the database belongs to a server
	// with another spec.host: two servers must never share one database.
	ReasonStoreHostMismatch = "StoreHostMismatch"
)

// Reasons of FederatedActor conditions.
const (
	// ReasonKeysGenerated (KeyReady) says fresh keys were made.
	ReasonKeysGenerated = "KeysGenerated"
	// ReasonKeysRotated (KeyReady) says the keys were rotated.
	ReasonKeysRotated = "KeysRotated"
	// ReasonKeysRepaired (KeyReady) says a missing or tampered Secret was repaired.
	ReasonKeysRepaired = "KeysRepaired"
	// ReasonKeysPending (Ready) says the key controller has not reported on the keys yet.
	ReasonKeysPending = "KeysPending"
	// ReasonUsernameConflict (Ready) says an older actor of the same server has the same
	// preferredUsername.
	ReasonUsernameConflict = "UsernameConflict"
	// ReasonForgeReachable (ForgeReachable) says the forge answered an authenticated read
	// of the project.
	ReasonForgeReachable = "ForgeReachable"
	// ReasonForgeUnreachable (ForgeReachable) says the forge could not be reached or
	// answered with an error other than 401 (down, refused address, unknown project);
	// the message is the error. The check is retried with backoff.
	ReasonForgeUnreachable = "ForgeUnreachable"
	// ReasonForgeUnauthorized (ForgeReachable) says the forge refused the token (401, or
	// 403 on the read); the message is the forge's answer.
	ReasonForgeUnauthorized = "ForgeUnauthorized"
	// ReasonTokenMissing (ForgeReachable) says the Secret of spec.forge.tokenSecretRef or
	// its key does not exist, or is empty.
	ReasonTokenMissing = "TokenMissing"
	// ReasonForgeNotSupported (ForgeReachable) says no API client for spec.forge.type is
	// built yet (GitLab, GitHub: phase 2).
	ReasonForgeNotSupported = "ForgeNotSupported"
	// ReasonMoveSent (Moved) says the target named this actor in alsoKnownAs and the
	// Move was queued for every follower (once; the delivery queue retries).
	ReasonMoveSent = "MoveSent"
	// ReasonMoveTargetUnconfirmed (Moved) says the target actor does not name this actor
	// in alsoKnownAs, so no Move was sent: add the alias on the target, the server checks
	// again every few minutes.
	ReasonMoveTargetUnconfirmed = "MoveTargetUnconfirmed"
	// ReasonMoveTargetUnreachable (Moved) says the target could not be fetched (refused
	// address, down, not an actor document); the message is the error. Retried.
	ReasonMoveTargetUnreachable = "MoveTargetUnreachable"
	// ReasonMoveTargetInvalid (Moved) says spec.movedTo is the actor itself.
	ReasonMoveTargetInvalid = "MoveTargetInvalid"
)

// Reasons of FederationPolicy conditions.
const (
	// ReasonLoaded (Enforced) says the server compiled the policy from its cache.
	ReasonLoaded = "Loaded"
	// ReasonBlocklistNotFound (BlocklistLoaded, Ready) says the ConfigMap or its key does
	// not exist.
	ReasonBlocklistNotFound = "BlocklistNotFound"
	// ReasonBlocklistInvalid (BlocklistLoaded, Ready) says the ConfigMap does not hold a
	// valid blocklist.
	ReasonBlocklistInvalid = "BlocklistInvalid"
)

// Reasons of Subscription conditions. The Accepted reasons are written by the server; the
// operator's Ready condition repeats the Accepted reason.
const (
	// ReasonPending (Ready) says nothing has been exchanged with the remote server yet.
	ReasonPending = "Pending"
	// ReasonAccepted (Accepted) says the follow is in effect: the remote actor accepted
	// it (Outbound) or the server sent Accept (Inbound).
	ReasonAccepted = "Accepted"
	// ReasonRejected (Accepted) says the remote actor rejected the follow (Outbound) or
	// the server refused it because spec.approved is false (Inbound).
	ReasonRejected = "Rejected"
	// ReasonAwaitingApproval (Accepted) says an Inbound follow waits for spec.approved.
	ReasonAwaitingApproval = "AwaitingApproval"
	// ReasonPolicyDenied (Accepted) says a FederationPolicy refuses the remote host. The
	// server also logs it as the reason of a Reject sent to a refused follower.
	ReasonPolicyDenied = "PolicyDenied"
	// ReasonNotAnActor (Accepted) says spec.remoteActor resolves to a document that is
	// not an actor (a Note, a Collection...): nothing to follow there. The message names
	// the type (and the author, when the document has one). Checked again when the spec
	// changes, or every 10 minutes.
	ReasonNotAnActor = "NotAnActor"
	// ReasonResolveFailed (Accepted) says the remote actor could not be resolved
	// (WebFinger or fetching its document); the server retries.
	ReasonResolveFailed = "ResolveFailed"
	// ReasonFollowSent (Accepted) says the Follow went out and the answer is awaited.
	ReasonFollowSent = "FollowSent"
	// ReasonNoFollow (Accepted) says an Inbound Subscription was created by hand: no
	// Follow was received for it (the server creates Inbound Subscriptions itself).
	ReasonNoFollow = "NoFollow"
	// ReasonHostAvailable (Reachable) says the remote host answers deliveries again.
	ReasonHostAvailable = "HostAvailable"
	// ReasonHostUnavailable (Reachable) says deliveries to the remote host failed on 7
	// distinct days; they resume when it is heard from.
	ReasonHostUnavailable = "HostUnavailable"
)
