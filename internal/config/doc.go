// Package config owns gatehouse's configuration: the gatehouse.yaml schema
// (types.go), its defaults, loading and decoding, semantic validation, and
// the zero-config paths (a command after "--" or a Procfile's web: line).
//
// Every problem is reported at once, each naming the file, line and key path
// (gatehouse.yaml:12: apps.web.health.interval: must be > 0), so that a user
// fixes a config in one pass instead of one error per run. Other packages
// read a *Config and never parse YAML themselves.
package config
