package telemetry

// The event types of gatehouse exec (package admin): a command run in an
// instance's world through the admin API.
const (
	// EventExec is a command started: App and Instance are the
	// instance's, PID the command's, Value its argv (never its
	// environment), Trigger who ran it: the admin client's address.
	EventExec = "exec"
	// EventExecExited is its end: ExitCode (or Signal), and Detail the
	// time it ran and how it ended.
	EventExecExited = "exec_exited"
)
