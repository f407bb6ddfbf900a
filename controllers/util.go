package controllers

import (
	"net"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func intOrName(name string) intstr.IntOrString { return intstr.FromString(name) }

func defaultSQLiteSize() resource.Quantity { return resource.MustParse("1Gi") }

// hostOnly drops a port from host:port; an Ingress rule takes a bare host name.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
