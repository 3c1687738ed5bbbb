// Package openapi embeds the OpenAPI v2 documents that protoc-gen-openapiv2
// writes next to this file, one per service proto, so that each service can
// publish its own.
package openapi

import "embed"

//go:embed recsys
var files embed.FS

// Spec returns the OpenAPI document generated from the named proto file, for
// example "recsys/ranking/v1/ranking.proto".
func Spec(protoFile string) ([]byte, error) {
	name := protoFile[:len(protoFile)-len(".proto")] + ".swagger.json"
	return files.ReadFile(name)
}
