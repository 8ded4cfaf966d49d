package cli

import "testing"

// The exit line quotes what the app said about its death, not the last
// line of a stack trace.
func TestLastOutput(t *testing.T) {
	tests := []struct {
		name string
		out  []string
		want string
	}{
		{"plain", []string{"starting", "listening on :8080", "bye"}, "bye"},
		{"go panic", []string{"listening", "panic: unhandled exception in POST /crash", "", "goroutine 1 [running]:", "main.crash()", "\t/app/main.go:12 +0x25"},
			"panic: unhandled exception in POST /crash"},
		{"python traceback", []string{"Traceback (most recent call last):", `  File "app.py", line 3, in <module>`, "ValueError: boom"}, "ValueError: boom"},
		{"node throw", []string{"/app/server.js:10", "    throw new Error('boom');", "    ^", "", "Error: boom", "    at Server.<anonymous> (/app/server.js:10:11)", "", "Node.js v20.20.2"}, "Error: boom"},
		{"java", []string{`Exception in thread "main" java.lang.IllegalStateException: boom`, "\tat App.main(App.java:5)"}, `Exception in thread "main" java.lang.IllegalStateException: boom`},
		{"no error word", []string{"ErrorHandler registered", "shutting down"}, "shutting down"},
		{"nothing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastOutput(tt.out); got != tt.want {
				t.Errorf("lastOutput = %q, want %q", got, tt.want)
			}
		})
	}
}
