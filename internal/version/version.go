// Package version carries the build version, set with -ldflags at build time, so that the
// binary, the User-Agent of outbound requests and NodeInfo all report the same version.
package version

// Version is the release of this build; "dev" when built without ldflags.
var Version = "dev"
