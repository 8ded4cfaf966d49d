package shim_test

import (
	"os"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/shim"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// An app that ends while no gatehouse reads its output (the one that
// started it left it to a successor, or was killed): its last output is
// in the pipe, of which the shim holds the last read end. The shim keeps
// it until an adopter has opened the pipe again and read it, then exits;
// the status says how the app ended.
func TestLastOutputWaitsForAnAdopter(t *testing.T) {
	r := start(t, spec(t, []string{"sh", "-c", "echo last words >&2; exit 3"}))
	r.Output.Close() // the gatehouse that started it is gone
	testutil.WaitFor(t, wait, "the app's exit status", func() bool {
		_, err := os.Stat(r.statusPath)
		return err == nil
	})
	time.Sleep(200 * time.Millisecond) // an adopter comes a moment later
	f, err := shim.OpenOutput(r.ShimPID)
	if err != nil {
		t.Fatalf("the app's last output is gone with its shim: %v", err)
	}
	defer f.Close()
	if got := readAll(t, f); got != "last words\n" {
		t.Errorf("the adopter reads %q; want the app's last output", got)
	}
	if ps := r.reaped(t); ps.ExitCode() != 0 {
		t.Errorf("shim ended %v", ps)
	}
	if st, err := shim.ReadStatus(r.statusPath); err != nil || st.Code == nil || *st.Code != 3 {
		t.Errorf("status %+v, %v; want code 3", st, err)
	}
}
