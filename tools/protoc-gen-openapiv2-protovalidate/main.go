// Command protoc-gen-openapiv2-protovalidate is protoc-gen-openapiv2 that
// also writes the request constraints of the contract into the OpenAPI
// documents.
//
// The constraints are written once, in proto/, as protovalidate
// (buf.validate) rules, which the services enforce. protoc-gen-openapiv2
// does not read them, so this plugin runs it (as `go tool
// protoc-gen-openapiv2`, pinned in tools/go.mod, with the same request and
// parameter) and then translates each rule into the Swagger 2.0 keywords
// of the property or parameter it constrains: required, minLength,
// maxLength, pattern, enum, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, minItems, maxItems, uniqueItems, minProperties,
// maxProperties. A field is required when the rules refuse its zero value
// (in proto3 JSON an absent field is its zero value); that is decided by
// running protovalidate itself on an empty message, not by a second
// reading of the rules. Rules no Swagger 2.0 keyword can say (CEL
// expressions) are added to the description in words. A rule of a kind
// this plugin does not know fails the generation instead of being left
// out. google.protobuf.Duration strings get the pattern protojson reads.
// See docs/architecture.md, "Validation declared in the contract".
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "protoc-gen-openapiv2-protovalidate:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	raw, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	// The buf.validate options are known extensions here (the generated
	// package is linked in), so they decode into typed rules.
	req := &pluginpb.CodeGeneratorRequest{}
	if err := proto.Unmarshal(raw, req); err != nil {
		return fmt.Errorf("read the request: %w", err)
	}
	cmd := exec.Command("go", "tool", "protoc-gen-openapiv2")
	cmd.Stdin, cmd.Stderr = bytes.NewReader(raw), os.Stderr
	generated, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("run protoc-gen-openapiv2: %w", err)
	}
	resp := &pluginpb.CodeGeneratorResponse{}
	if err := proto.Unmarshal(generated, resp); err != nil {
		return fmt.Errorf("read protoc-gen-openapiv2's response: %w", err)
	}
	if resp.GetError() == "" {
		if err := addRules(req, resp); err != nil {
			resp = &pluginpb.CodeGeneratorResponse{Error: proto.String(err.Error())}
		}
	}
	b, err := proto.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

// addRules rewrites each generated document with the rules of the proto
// file it was generated from.
func addRules(req *pluginpb.CodeGeneratorRequest, resp *pluginpb.CodeGeneratorResponse) error {
	files, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: req.GetProtoFile()})
	if err != nil {
		return fmt.Errorf("descriptors: %w", err)
	}
	var errs []error
	for _, f := range resp.GetFile() {
		name, ok := strings.CutSuffix(f.GetName(), ".swagger.json")
		if !ok {
			continue
		}
		fd, err := files.FindFileByPath(name + ".proto")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: no proto file for it: %w", f.GetName(), err))
			continue
		}
		content, err := patchDocument([]byte(f.GetContent()), fd, files)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.GetName(), err))
			continue
		}
		f.Content = proto.String(content)
	}
	return errors.Join(errs...)
}
