//go:build ignore

// gen_profiles writes profiles.binpb, the descriptors of the OTLP profiles
// signal (opentelemetry/proto/profiles/v1development/profiles.proto and
// .../collector/profiles/v1development/profiles_service.proto) as a
// google.protobuf.FileDescriptorSet.
//
// They come from go.opentelemetry.io/proto/slim/otlp/{,collector/}profiles/v1development
// at the version pdata pins, read from the generated code in the module
// cache rather than imported: the slim packages register the same proto
// files (common.proto, resource.proto) as go.opentelemetry.io/proto/otlp,
// which the collector already links, and protobuf-go panics on a second
// registration of a file.
//
// Run with `go generate ./extensions/protoguardextension/internal/wirecheck/`.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

func main() {
	set := &descriptorpb.FileDescriptorSet{}
	for _, src := range []struct{ module, file string }{
		{"go.opentelemetry.io/proto/slim/otlp/profiles/v1development", "profiles.pb.go"},
		{"go.opentelemetry.io/proto/slim/otlp/collector/profiles/v1development", "profiles_service.pb.go"},
	} {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", src.module).Output()
		if err != nil {
			log.Fatalf("go list -m %s: %v", src.module, err)
		}
		dir, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
		raw, err := rawDescriptor(filepath.Join(dir, src.file))
		if err != nil {
			log.Fatal(err)
		}
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(raw, fd); err != nil {
			log.Fatalf("%s: %v", src.file, err)
		}
		log.Printf("%s from %s %s", fd.GetName(), src.module, version)
		set.File = append(set.File, fd)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("profiles.binpb", b, 0o644); err != nil {
		log.Fatal(err)
	}
}

// rawDescriptor evaluates the []byte literal assigned to the file's
// file_..._rawDesc variable: the serialized FileDescriptorProto.
func rawDescriptor(path string) ([]byte, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		return nil, err
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if len(vs.Names) != 1 || !strings.HasSuffix(vs.Names[0].Name, "_rawDesc") || len(vs.Values) != 1 {
				continue
			}
			lit, ok := vs.Values[0].(*ast.CompositeLit)
			if !ok {
				return nil, fmt.Errorf("%s: %s is not a []byte literal", path, vs.Names[0].Name)
			}
			var buf bytes.Buffer
			for _, e := range lit.Elts {
				bl, ok := e.(*ast.BasicLit)
				if !ok || bl.Kind != token.INT {
					return nil, fmt.Errorf("%s: unexpected element in %s", path, vs.Names[0].Name)
				}
				v, err := strconv.ParseUint(bl.Value, 0, 8)
				if err != nil {
					return nil, err
				}
				buf.WriteByte(byte(v))
			}
			return buf.Bytes(), nil
		}
	}
	return nil, fmt.Errorf("%s: no _rawDesc variable", path)
}
