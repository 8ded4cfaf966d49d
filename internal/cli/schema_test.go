package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/cli"
)

// `gatehouse schema` prints the committed schema, byte for byte, and
// nothing else: what an editor is pointed at is what the repository
// ships and the tests check.
func TestSchemaPrintsTheCommittedSchema(t *testing.T) {
	want, err := os.ReadFile("../../schema/gatehouse.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := cli.Main([]string{"schema"}, &stdout, &stderr); code != 0 {
		t.Fatalf("gatehouse schema exited %d\nstderr:\n%s", code, &stderr)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("gatehouse schema printed %d bytes that differ from schema/gatehouse.schema.json (%d bytes)", stdout.Len(), len(want))
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", &stderr)
	}
	var doc map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("the output is not JSON: %v", err)
	}
	if got, want := doc["$schema"], "https://json-schema.org/draft/2020-12/schema"; got != want {
		t.Errorf("$schema = %v, want %s", got, want)
	}
}
