package wirecheck

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/testdata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// FuzzCheck: the check never panics, and agrees with the decoders:
//   - what it passes, pdata decodes (but IDs of the wrong length, a
//     semantic rule pdata applies and the wire check does not);
//   - what it calls malformed, pdata or protobuf-go refuses too (but groups,
//     refused here because pdata cannot skip them, and accepted by
//     protobuf-go);
//   - what it calls invalid UTF-8, protobuf-go refuses too;
//   - the decoded-size estimates (protobuf and JSON) are never negative.
//
// The first byte of the input picks the signal.
//
//	go test -run '^$' -fuzz FuzzCheck -fuzztime 60s ./extensions/protoguardextension/internal/wirecheck/
func FuzzCheck(f *testing.F) {
	for i, data := range []any{
		testdata.GenerateTraces(2), testdata.GenerateMetricsAllTypes(), testdata.GenerateLogs(2), testdata.GenerateProfiles(2),
	} {
		f.Add(append([]byte{byte(i)}, marshalProto(f, data)...))
	}
	for _, sig := range signals {
		f.Add(append([]byte{byte(sig)}, marshalProto(f, withValue(sig, func(v pcommon.Value) { setNested(v, 5, false) }))...))
		f.Add(append([]byte{byte(sig)}, marshalProto(f, withValue(sig, func(v pcommon.Value) { v.SetStr("\xc3\x28") }))...))
	}
	f.Add([]byte("\x00\xff\xff\xff\xff not protobuf"))
	descriptors := map[Signal]protoreflect.MessageDescriptor{}
	c, err := New(4, true)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		sig := Signal(in[0] % byte(numSignals))
		b := in[1:]
		if size, err := c.CheckJSONSize(sig, b); size < 0 || (err != nil && size != 0) {
			t.Fatalf("%s JSON: estimate %d, error %v", sig, size, err)
		}
		size, err := c.CheckProtoSize(sig, b)
		if size < 0 || (err != nil && size != 0) {
			t.Fatalf("%s: estimate %d, error %v", sig, size, err)
		}
		pdataErr := pdataDecode(sig, b)
		if err == nil {
			if pdataErr != nil && !isIDLengthError(pdataErr) {
				t.Fatalf("%s: passed, but pdata refuses it: %v", sig, pdataErr)
			}
			return
		}
		md, ok := descriptors[sig]
		if !ok {
			md = requestDescriptor(sig)
			descriptors[sig] = md
		}
		goErr := proto.Unmarshal(b, dynamicpb.NewMessage(md))
		switch err.Reason {
		case ReasonMalformed:
			if pdataErr == nil && goErr == nil && !strings.Contains(err.Error(), "is a group") {
				t.Fatalf("%s: %v, but pdata and protobuf-go decode it", sig, err)
			}
		case ReasonUTF8:
			if goErr == nil {
				t.Fatalf("%s: %v, but protobuf-go decodes it", sig, err)
			}
		}
	})
}
