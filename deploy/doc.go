// Package deploy holds no code: its tests check the deployment files in this
// directory (kustomize overlays, Helm values, Dockerfile, compose file) the
// way the tools that consume them would. It is its own module so that the
// Kubernetes and kustomize libraries stay out of the distribution's build.
package deploy
