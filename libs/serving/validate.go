package serving

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// requestValidator enforces the constraints a request message declares in
// proto/ (protovalidate's buf.validate rules) before any handler runs, for
// every service and on every protocol: REST and gRPC-Web calls reach the
// same gRPC server. A request that breaks a rule is refused whole, with
// InvalidArgument naming each field, so nothing of it is ever applied
// (docs/architecture.md, "Validation declared in the contract").
//
// Rules a constraint cannot say (a row width that depends on the loaded
// model, an event time measured against the server's clock) stay in the
// handlers.
type requestValidator struct {
	v protovalidate.Validator
}

func newRequestValidator() (*requestValidator, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("request validator: %w", err)
	}
	return &requestValidator{v: v}, nil
}

func (rv *requestValidator) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := rv.check(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (rv *requestValidator) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &validatingStream{ServerStream: ss, rv: rv})
}

// validatingStream checks each message a client streams in.
type validatingStream struct {
	grpc.ServerStream
	rv *requestValidator
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.rv.check(m)
}

// check returns nil or the InvalidArgument status of the request's
// violations: a message that names every bad field (and its value, when it
// is short), with a google.rpc.BadRequest detail listing them for programs.
func (rv *requestValidator) check(req any) error {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	err := rv.v.Validate(m)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		// A rule that does not compile or evaluate is the contract's fault,
		// not the caller's.
		return status.Errorf(codes.Internal, "validating %s: %v", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return violationStatus(verr)
}

// maxQuotedValue bounds the part of a bad value quoted back in an error,
// maxNamedViolations the violations its message names (1001 empty ids
// made a 40 kB message).
const (
	maxQuotedValue     = 40
	maxNamedViolations = 5
)

func violationStatus(verr *protovalidate.ValidationError) error {
	parts := make([]string, 0, len(verr.Violations))
	br := &errdetails.BadRequest{}
	for _, v := range verr.Violations {
		field := protovalidate.FieldPathString(v.Proto.GetField())
		msg := v.Proto.GetMessage()
		if msg == "" {
			msg = "breaks rule " + v.Proto.GetRuleId()
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: field, Description: msg, Reason: v.Proto.GetRuleId(),
		})
		if len(parts) == maxNamedViolations {
			continue // the detail lists them all; the message stays readable
		}
		var b strings.Builder
		if field != "" {
			b.WriteString(field)
			if q, ok := quoteValue(v.FieldDescriptor, v.FieldValue); ok {
				b.WriteString(" " + q)
			}
			b.WriteString(": ")
		}
		b.WriteString(msg)
		parts = append(parts, b.String())
	}
	msg := "invalid request: " + strings.Join(parts, "; ")
	if more := len(verr.Violations) - len(parts); more > 0 {
		msg += fmt.Sprintf("; and %d more", more)
	}
	st := status.New(codes.InvalidArgument, msg)
	if withDetails, err := st.WithDetails(br); err == nil {
		st = withDetails
	}
	return st.Err()
}

// quoteValue renders a scalar field value for an error message: strings
// quoted and cut at maxQuotedValue characters, numbers as they are.
// Lists, maps and messages are not quoted.
func quoteValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) (string, bool) {
	if !v.IsValid() {
		return "", false
	}
	switch x := v.Interface().(type) {
	case string:
		if utf8.RuneCountInString(x) > maxQuotedValue {
			x = string([]rune(x)[:maxQuotedValue]) + "…"
		}
		return fmt.Sprintf("%q", x), true
	case int32, int64, uint32, uint64, float32, float64, bool:
		return fmt.Sprint(x), true
	case protoreflect.EnumNumber:
		if fd == nil {
			return fmt.Sprint(int32(x)), true
		}
		if e := fd.Enum(); e != nil {
			if ev := e.Values().ByNumber(x); ev != nil {
				return string(ev.Name()), true
			}
		}
		return fmt.Sprint(int32(x)), true
	}
	return "", false
}
