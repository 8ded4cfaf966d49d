// Package admin owns the admin API that the CLI, dashboards and scripts
// talk to, and the client the CLI uses to talk to it.
package admin
