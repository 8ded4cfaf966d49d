// Package configref makes gatehouse.yaml's reference from the config
// types themselves: docs/config.md (every key with its type, default and
// doc comment) and schema/gatehouse.schema.json (a JSON Schema for
// editors). Keys, types and defaults come from internal/config by
// reflection, the text from that package's doc comments, so the two
// files cannot drift from the code: a test regenerates them and fails
// when the committed ones differ.
//
// Both files are committed; the binary embeds the schema (package
// schema at the repository root) and never needs the source. Only the
// generator, its tests and nothing else import this package.
package configref

//go:generate go run ./gen
