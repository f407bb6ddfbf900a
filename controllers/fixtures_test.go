package controllers_test

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

func server(ns, name, host string) *fedv1.FederationServer {
	return &fedv1.FederationServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       fedv1.FederationServerSpec{Host: host},
	}
}

func actor(ns, name, serverName, username string) *fedv1.FederatedActor {
	return &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fedv1.FederatedActorSpec{
			ServerRef:         fedv1.LocalObjectReference{Name: serverName},
			PreferredUsername: username,
		},
	}
}

func subscription(ns, name, actorName string, dir fedv1.Direction, remote string) *fedv1.Subscription {
	return &fedv1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fedv1.SubscriptionSpec{
			Direction:   dir,
			ActorRef:    fedv1.LocalObjectReference{Name: actorName},
			RemoteActor: remote,
		},
	}
}

func policy(ns, name, target string) *fedv1.FederationPolicy {
	return &fedv1.FederationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: target}},
	}
}

// withForge sets a's spec.forge, with the token in Secret "forge-token".
func withForge(a *fedv1.FederatedActor, typ fedv1.ForgeType, url, project string) *fedv1.FederatedActor {
	a.Spec.Forge = &fedv1.ForgeAccess{Type: typ, URL: url, Project: project,
		TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}}
	return a
}
