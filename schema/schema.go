// Package schema holds gatehouse.yaml's JSON Schema, generated from the
// config types by internal/configref (go generate ./...) and embedded so
// that `gatehouse schema` prints the schema of the binary that runs,
// with no source at hand.
package schema

import _ "embed"

//go:embed gatehouse.schema.json
var schemaJSON string

// JSON is the schema (draft 2020-12), as committed in
// schema/gatehouse.schema.json.
func JSON() string { return schemaJSON }
