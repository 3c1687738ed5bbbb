package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// durationPattern is the JSON form protojson reads for a
// google.protobuf.Duration: whole seconds without leading zeros (at most
// 11 digits, inside its ±315576000000 s range) with up to 9 fractional
// digits, then "s".
const durationPattern = `^-?(0|[1-9][0-9]{0,10})(\.[0-9]{1,9})?s$`

// patcher adds one proto file's rules to the document generated from it.
type patcher struct {
	file      protoreflect.FileDescriptor
	defs      *object
	validator protovalidate.Validator
	// zeroFails caches, per message, the fields whose zero value its rules
	// refuse.
	zeroFails map[protoreflect.FullName]map[protoreflect.FieldNumber]bool
	done      map[string]bool // definitions patched
	errs      []error
}

func patchDocument(b []byte, file protoreflect.FileDescriptor, files *protoregistry.Files) (string, error) {
	doc, err := parseObject(b)
	if err != nil {
		return "", err
	}
	v, err := protovalidate.New()
	if err != nil {
		return "", err
	}
	p := &patcher{file: file, defs: doc.obj("definitions"), validator: v,
		zeroFails: map[protoreflect.FullName]map[protoreflect.FieldNumber]bool{}, done: map[string]bool{}}
	if p.defs == nil {
		p.defs = newObject()
	}
	paths := doc.obj("paths")
	if paths != nil {
		for _, path := range paths.keys {
			item := paths.obj(path)
			for _, verb := range item.keys {
				p.operation(path, verb, item.obj(verb))
			}
		}
	}
	if err := errors.Join(p.errs...); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := encode(&buf, doc, ""); err != nil {
		return "", err
	}
	buf.WriteByte('\n')
	return buf.String(), nil
}

func (p *patcher) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// operation patches one operation: its parameters from the request
// message, its bodies and responses through their definitions.
func (p *patcher) operation(path, verb string, op *object) {
	if op == nil {
		return
	}
	id := op.str("operationId")
	svcName, methodName, ok := strings.Cut(id, "_")
	if !ok {
		p.fail("%s %s: operationId %q is not Service_Method", verb, path, id)
		return
	}
	svc := p.file.Services().ByName(protoreflect.Name(svcName))
	if svc == nil || svc.Methods().ByName(protoreflect.Name(methodName)) == nil {
		p.fail("%s %s: no method %s in %s", verb, path, id, p.file.Path())
		return
	}
	m := svc.Methods().ByName(protoreflect.Name(methodName))
	if params, ok := op.get("parameters").([]any); ok {
		for _, x := range params {
			param, _ := x.(*object)
			if param == nil {
				continue
			}
			switch param.str("in") {
			case "body":
				p.schema(param.obj("schema"), m.Input(), true)
			case "query", "path":
				p.parameter(param, m.Input())
			}
		}
	}
	if responses := op.obj("responses"); responses != nil {
		for _, code := range responses.keys {
			if r := responses.obj(code); r != nil && code == "200" {
				p.schema(r.obj("schema"), m.Output(), false)
			}
		}
	}
}

// parameter applies the rules of the field a query or path parameter
// names ("a.b" for a nested field, "m[string]" for a map's values).
func (p *patcher) parameter(param *object, md protoreflect.MessageDescriptor) {
	name := param.str("name")
	name, _, _ = strings.Cut(name, "[")
	parts := strings.Split(name, ".")
	var fd protoreflect.FieldDescriptor
	for i, part := range parts {
		fd = byJSONName(md, part)
		if fd == nil {
			p.fail("parameter %s: no field %s in %s", param.str("name"), part, md.FullName())
			return
		}
		if i < len(parts)-1 {
			md = fd.Message()
		}
	}
	if fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Duration" {
		param.set("pattern", durationPattern)
	}
	rules := fieldRules(fd)
	if rules == nil {
		return
	}
	if p.zeroRefused(md, fd) && len(parts) == 1 {
		param.set("required", true)
	}
	target := param
	if fd.IsMap() {
		// A map in a query is one parameter per key: the rules of its
		// values are the parameter's.
		if v := rules.GetMap().GetValues(); v != nil {
			p.rules(target, fd.MapValue(), v, param.str("name"))
		}
		if rules.GetMap().HasKeys() {
			p.fail("parameter %s: map key rules have no Swagger 2.0 form", param.str("name"))
		}
		p.describe(target, rules.GetCel())
		return
	}
	p.rules(target, fd, rules, param.str("name"))
}

// schema patches a body (request) or response schema: a $ref to a
// definition, or an object inline.
func (p *patcher) schema(s *object, md protoreflect.MessageDescriptor, request bool) {
	if s == nil {
		return
	}
	if ref := s.str("$ref"); ref != "" {
		name := strings.TrimPrefix(ref, "#/definitions/")
		def := p.defs.obj(name)
		if def == nil {
			p.fail("%s: no definition %s", md.FullName(), name)
			return
		}
		key := fmt.Sprint(name, request)
		if p.done[key] {
			return
		}
		p.done[key] = true
		p.message(def, md, request)
		return
	}
	if s.obj("properties") != nil {
		p.message(s, md, request)
	}
}

// message patches the schema of one message: each field's rules, the
// required list, and the message's own rules in words. In a request, a
// field that is not required may be null: proto3's JSON mapping reads
// null as the field's default, and the gateway follows it.
func (p *patcher) message(def *object, md protoreflect.MessageDescriptor, request bool) {
	if md.FullName().Parent() == "google.protobuf" || md.FullName().Parent() == "google.rpc" {
		return
	}
	props := def.obj("properties")
	if props == nil {
		return
	}
	if mr, ok := proto.GetExtension(md.Options(), validate.E_Message).(*validate.MessageRules); ok && mr != nil {
		p.describe(def, mr.GetCel())
		if len(mr.GetOneof()) > 0 {
			p.fail("%s: message oneof rules have no Swagger 2.0 form", md.FullName())
		}
	}
	var required []any
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		prop := props.obj(fd.JSONName())
		if prop == nil {
			continue // a path parameter, not in the body
		}
		p.nested(prop, fd, request)
		floatRange(prop, fd)
		rules := fieldRules(fd)
		if rules != nil && p.zeroRefused(md, fd) {
			required = append(required, fd.JSONName())
		} else if request {
			prop.set("x-nullable", true)
		}
		if rules != nil {
			p.rules(prop, fd, rules, string(md.Name())+"."+fd.JSONName())
		}
	}
	if len(required) > 0 {
		def.set("required", required)
	}
}

// nested follows a field into the message it holds (directly, as list
// items or as map values), and gives Duration strings their pattern.
func (p *patcher) nested(prop *object, fd protoreflect.FieldDescriptor, request bool) {
	target, md := prop, fd.Message()
	switch {
	case fd.IsMap():
		target, md = prop.obj("additionalProperties"), fd.MapValue().Message()
	case fd.IsList():
		target = prop.obj("items")
	}
	if md == nil || target == nil {
		return
	}
	if md.FullName() == "google.protobuf.Duration" {
		target.set("pattern", durationPattern)
		return
	}
	p.schema(target, md, request)
}

// zeroRefused reports whether md's rules refuse fd's zero value: then the
// field must be present in JSON, where absent is zero. protovalidate
// decides, on an empty message.
func (p *patcher) zeroRefused(md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor) bool {
	fails, ok := p.zeroFails[md.FullName()]
	if !ok {
		fails = map[protoreflect.FieldNumber]bool{}
		var verr *protovalidate.ValidationError
		if err := p.validator.Validate(dynamicpb.NewMessage(md)); errors.As(err, &verr) {
			for _, v := range verr.Violations {
				if els := v.Proto.GetField().GetElements(); len(els) == 1 {
					fails[protoreflect.FieldNumber(els[0].GetFieldNumber())] = true
				}
			}
		} else if err != nil {
			p.fail("%s: %v", md.FullName(), err)
		}
		p.zeroFails[md.FullName()] = fails
	}
	return fails[fd.Number()]
}

// floatRange bounds a float (32-bit) field to the numbers it can hold:
// protojson refuses a JSON number beyond them. Rules set after it narrow
// the bounds further.
func floatRange(prop *object, fd protoreflect.FieldDescriptor) {
	if fd.Kind() != protoreflect.FloatKind || fd.IsMap() {
		return
	}
	target := prop
	if fd.IsList() {
		target = prop.obj("items")
	}
	if target == nil {
		return
	}
	limit := json.Number(strconv.FormatFloat(math.MaxFloat32, 'g', -1, 32))
	target.set("minimum", "-"+limit)
	target.set("maximum", limit)
}

func fieldRules(fd protoreflect.FieldDescriptor) *validate.FieldRules {
	r, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return r
}

func byJSONName(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	if fd := md.Fields().ByJSONName(name); fd != nil {
		return fd
	}
	return md.Fields().ByName(protoreflect.Name(name))
}

// describe adds rules in words (CEL expressions have no Swagger form).
func (p *patcher) describe(target *object, cel []*validate.Rule) {
	for _, r := range cel {
		msg := r.GetMessage()
		if msg == "" {
			msg = r.GetExpression()
		}
		d := target.str("description")
		if d != "" {
			d += "\n\n"
		}
		target.set("description", d+"Rule: "+msg+".")
	}
}

// rules writes one field's rules into its schema (or parameter) target.
// what names the field in errors.
func (p *patcher) rules(target *object, fd protoreflect.FieldDescriptor, r *validate.FieldRules, what string) {
	p.describe(target, r.GetCel())
	if len(r.GetCelExpression()) > 0 {
		p.fail("%s: cel_expression rules: write them as cel, with a message", what)
	}
	rm := r.ProtoReflect()
	oneof := rm.Descriptor().Oneofs().ByName("type")
	kind := rm.WhichOneof(oneof)
	if kind == nil {
		return
	}
	typed := rm.Get(kind).Message()
	switch kind.Name() {
	case "repeated":
		p.repeated(target, fd, typed.Interface().(*validate.RepeatedRules), what)
	case "map":
		p.mapRules(target, fd, typed.Interface().(*validate.MapRules), what)
	case "string":
		p.scalar(target, typed, what, map[string]string{"min_len": "minLength", "max_len": "maxLength", "pattern": "pattern"})
	case "enum":
		p.enum(target, fd, typed.Interface().(*validate.EnumRules), what)
	case "int32", "uint32", "sint32", "fixed32", "sfixed32", "float", "double":
		p.scalar(target, typed, what, nil)
	default:
		p.fail("%s: %s rules have no Swagger 2.0 form here (protojson writes %s as a string)", what, kind.Name(), kind.Name())
	}
}

// scalar translates string and number rules; keys maps rule names to
// keywords beyond the shared ones (const, in, and the bounds).
func (p *patcher) scalar(target *object, rules protoreflect.Message, what string, keys map[string]string) {
	rules.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := string(f.Name())
		switch {
		case keys[name] != "":
			target.set(keys[name], jsonValue(v))
		case name == "len":
			target.set("minLength", jsonValue(v))
			target.set("maxLength", jsonValue(v))
		case name == "gte":
			target.set("minimum", jsonValue(v))
		case name == "gt":
			target.set("minimum", jsonValue(v))
			target.set("exclusiveMinimum", true)
		case name == "lte":
			target.set("maximum", jsonValue(v))
		case name == "lt":
			target.set("maximum", jsonValue(v))
			target.set("exclusiveMaximum", true)
		case name == "const":
			target.set("enum", []any{jsonValue(v)})
		case name == "in":
			var vals []any
			for i := range v.List().Len() {
				vals = append(vals, jsonValue(v.List().Get(i)))
			}
			target.set("enum", vals)
		case name == "finite":
			// JSON numbers are finite; "NaN" and "Infinity" are strings,
			// which the number type already refuses.
		default:
			p.fail("%s: rule %s has no Swagger 2.0 form", what, name)
		}
		return true
	})
}

func jsonValue(v protoreflect.Value) any {
	switch x := v.Interface().(type) {
	case string, bool:
		return x
	case float32:
		return json.Number(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	default:
		return json.Number(fmt.Sprint(x))
	}
}

func (p *patcher) repeated(target *object, fd protoreflect.FieldDescriptor, r *validate.RepeatedRules, what string) {
	if r.HasMinItems() {
		target.set("minItems", json.Number(strconv.FormatUint(r.GetMinItems(), 10)))
	}
	if r.HasMaxItems() {
		target.set("maxItems", json.Number(strconv.FormatUint(r.GetMaxItems(), 10)))
	}
	if r.GetUnique() {
		target.set("uniqueItems", true)
	}
	if items := r.GetItems(); items != nil {
		if it := target.obj("items"); it != nil {
			p.rules(it, fd, items, what+"[]")
		} else {
			p.fail("%s: item rules but no items schema", what)
		}
	}
}

func (p *patcher) mapRules(target *object, fd protoreflect.FieldDescriptor, r *validate.MapRules, what string) {
	if r.HasMinPairs() {
		target.set("minProperties", json.Number(strconv.FormatUint(r.GetMinPairs(), 10)))
	}
	if r.HasMaxPairs() {
		target.set("maxProperties", json.Number(strconv.FormatUint(r.GetMaxPairs(), 10)))
	}
	if r.HasKeys() {
		p.fail("%s: map key rules have no Swagger 2.0 form", what)
	}
	if v := r.GetValues(); v != nil {
		if ap := target.obj("additionalProperties"); ap != nil {
			p.rules(ap, fd.MapValue(), v, what+"{}")
		} else {
			p.fail("%s: value rules but no additionalProperties schema", what)
		}
	}
}

// enum narrows an enum's names to those the rules allow, inline (a $ref
// cannot carry them).
func (p *patcher) enum(target *object, fd protoreflect.FieldDescriptor, r *validate.EnumRules, what string) {
	ed := fd.Enum()
	var allowed []any
	for i := range ed.Values().Len() {
		v := ed.Values().Get(i)
		n := int32(v.Number())
		ok := (!r.HasConst() || r.GetConst() == n) &&
			(len(r.GetIn()) == 0 || slices.Contains(r.GetIn(), n)) &&
			!slices.Contains(r.GetNotIn(), n)
		if ok {
			allowed = append(allowed, string(v.Name()))
		}
	}
	if len(allowed) == 0 {
		p.fail("%s: the rules allow no value of %s", what, ed.FullName())
		return
	}
	target.del("$ref")
	target.set("type", "string")
	target.set("enum", allowed)
	if d, ok := target.get("default").(string); ok && !slices.Contains(allowed, any(d)) {
		target.del("default")
	}
}
