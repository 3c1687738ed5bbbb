// Package manifeststest holds the checks of the deployment files that only
// this project can make: the service table (libs/servicemap) against the
// binaries, the web edge, the Kubernetes and Istio manifests in deploy/ and
// istio/, docker-compose.yml and the README; every container's flags and
// environment against its binary; the metrics dashboards and analyses read
// against those the services register; selectors and references across
// objects; and the rollout and mesh rules of docs/architecture.md. Schema
// work is the stock tools' (make validate, make validate-istio), except the
// strict decoding of custom resources into their upstream Go types, which
// no stock tool does offline. It has no code of its own; see the _test.go
// files.
package manifeststest
