package cause

import "fmt"

// Error is a failure with its cause. The gateway answers a client from it;
// the access log and events take the cause and detail from it.
type Error struct {
	Cause Cause
	// Instance is the instance id the failure belongs to, if any.
	Instance string
	// Detail says what gatehouse saw, for people ("connection refused on
	// port 41873; instance web-1 exited with signal SIGKILL").
	Detail string
	// Err is the underlying error, if any.
	Err error
	// Hint, when set, replaces the cause's hint for this failure: a
	// queue_full of instances busy at max_inflight calls for more
	// capacity, not patience.
	Hint string
}

// Busy is in the detail of an instances_busy or queue_full whose
// instances were up but every one at max_inflight.
const Busy = "busy at max_inflight"

// BusyHint is the hint for those failures.
const BusyHint = "every instance is busy at max_inflight (overload, not a crash): add instances (gatehouse scale, or autoscale), raise max_inflight if the app can take more at once, or retry later"

// HintText is what the error page suggests: Hint, or the cause's.
func (e *Error) HintText() string {
	if e.Hint != "" {
		return e.Hint
	}
	return e.Cause.Hint()
}

// New returns an Error for cause c.
func New(c Cause, instance, detail string, err error) *Error {
	return &Error{Cause: c, Instance: instance, Detail: detail, Err: err}
}

func (e *Error) Error() string {
	msg := string(e.Cause)
	if e.Instance != "" {
		msg += " on " + e.Instance
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status for the error's cause.
func (e *Error) Status() int { return e.Cause.Status() }

// Errorf is New with a formatted detail.
func Errorf(c Cause, instance string, err error, format string, args ...any) *Error {
	return New(c, instance, fmt.Sprintf(format, args...), err)
}
