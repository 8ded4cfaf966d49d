package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// bareConfig is a config with no app on loopback ports of its own, for
// tests of what New refuses.
func bareConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	return cfg
}

// discard ends a server New made that never ran.
func discard(s *Server) {
	s.closeLogs()
	s.dataLock.release()
	s.publicLn.Close()
	s.adminLn.Close()
}

// A listen address in use is reported with the process that holds it:
// here the test itself.
func TestAddressInUseNamesTheHolder(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := bareConfig(t)
	cfg.Listen = ln.Addr().String()
	s, err := New(cfg, Options{})
	if err == nil {
		discard(s)
		t.Fatal("New on an address in use succeeded")
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	want := fmt.Sprintf("(held by pid %d, %s)", os.Getpid(), strings.TrimSpace(string(comm)))
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), want) {
		t.Errorf("New: %v; want EADDRINUSE saying %q", err, want)
	}
}

// One server at a time holds its data_dir: a second is refused with the
// holder's pid, and the data_dir is free again once the first has let go.
func TestDataDirHeldByOneServer(t *testing.T) {
	t.Parallel()
	cfg := bareConfig(t)
	first, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	other := bareConfig(t)
	other.DataDir = cfg.DataDir
	_, err = New(other, Options{})
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) || inUse.PID != os.Getpid() {
		t.Errorf("a second server on the data_dir: %v; want DataDirInUseError naming pid %d", err, os.Getpid())
	}
	discard(first)
	// A process that parallel tests fork holds a copy of the lock's
	// descriptor until it execs: the flock is free once those have.
	var again *Server
	testutil.WaitFor(t, 10*time.Second, "the data_dir let go of to be taken again", func() bool {
		again, err = New(other, Options{})
		if err != nil && !errors.As(err, &inUse) {
			t.Fatalf("a server on the data_dir let go of: %v", err)
		}
		return err == nil
	})
	discard(again)
}
