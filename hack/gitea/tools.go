//go:build tools

// Package tools pins Gitea's main package so that `go mod tidy` keeps every module it
// needs in go.sum; hack/gitea.sh builds it with `go build gitea.dev`.
package tools

import _ "gitea.dev"
