// Package deploy holds no code. It owns the recipes for running gatehouse
// outside a developer's shell: the container images (the Dockerfile at the
// repository root and deploy/docker), the Kubernetes manifests
// (deploy/kubernetes) and the VM fleet notes (deploy/systemd). Its tests
// decode those recipes strictly and check them against the gatehouse
// config they ship with, loaded by gatehouse's own loader, so that a
// manifest cannot drift from the config it runs.
//
// The Kubernetes API types are imported by the tests only: none of it is
// linked into the gatehouse binary.
package deploy
