package instance

import (
	"context"

	"github.com/gatehouse/gatehouse/internal/adoption"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/portcheck"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/process"
	"github.com/gatehouse/gatehouse/internal/procstat"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Host is what the instances of one app share: the app's name, config and
// pool, and what the supervisor lends them. Its fields are set once,
// before the first instance starts.
type Host struct {
	App string
	// Config is the app's current config.
	Config func() *config.App
	Pool   *pool.Pool
	// DataDir holds logs/APP/INSTANCE.log, rotated as LogFiles says.
	DataDir string
	Events  Events
	Ports   *Ports
	Records Records
	// StatusFiles names each process's exit status file.
	StatusFiles interface{ Path(id string) string }
	Prober      Prober
	// Reader reads a process tree's sockets, for the port check.
	Reader procstat.Reader
	// ProbeResult, if set, sees every probe's result (metrics).
	ProbeResult func(app, instance string, r probe.Result)
	// ExplainPortMismatch, if set, words a port mismatch (see package
	// portcheck); without it, none is looked for.
	ExplainPortMismatch portcheck.Explain
	// Environ is the environment of a process of the app with env:
	// appEnv, before the instance's own variables.
	Environ func(appEnv map[string]string) []string
	// Kick asks for a sample of the processes soon (an instance became
	// ready).
	Kick func()
	// Console and Lines receive every line of output (nil: none).
	Console *process.Console
	Lines   process.Lines

	// LogFiles is the rotation of logs/APP/INSTANCE.log.
	LogFiles process.FileOptions
}

// Events receives the instance's lifecycle events.
type Events interface {
	Emit(telemetry.Event)
}

// Records is the record of running processes (see package adoption):
// every process started or adopted is in it until it ends.
type Records interface {
	Started(adoption.ProcessRecord)
	Exited(app, id string, pid int)
	// Token is the run token of the processes it records, Env the
	// variable that carries it ("" without a record).
	Token() string
	Env() string
}

// Prober checks an address once.
type Prober interface {
	Check(ctx context.Context, addr string, spec probe.Spec) probe.Result
}
