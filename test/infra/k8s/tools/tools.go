//go:build tools

// Imports what k8s.sh builds or reads so that "go mod tidy" keeps it in go.mod.
package tools

import (
	_ "istio.io/api/security/v1"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
