// Package manifeststest holds the tests of the deployment files: the
// Kubernetes and Istio manifests in deploy/ and istio/ (every kustomization
// builds, every object decodes strictly into its upstream Go type, and the
// objects agree with each other and with the binaries: selectors, ports,
// subsets, weights, principals, flags), and docker-compose.yml with its
// Dockerfiles, Prometheus and Grafana configuration (compose-go loads it;
// flags, environment, ports and dashboard metrics match the services). It
// has no code of its own; see the _test.go files.
package manifeststest
