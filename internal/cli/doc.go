// Package cli owns gatehouse's command line: one cobra command per
// subcommand, each a function that returns an error; Main maps errors to
// exit codes.
package cli
