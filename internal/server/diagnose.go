package server

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// snapshotLoop keeps data_dir/state.json fresh, so that diagnose run
// offline, after gatehouse stopped, sees the last state it had.
func (s *Server) snapshotLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SampleInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.writeSnapshot()
		}
	}
}

func (s *Server) writeSnapshot() {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	snap := diagnose.Take(s.sup)
	snap.AccessLog = s.cfg.AccessLog
	if err := snap.Write(s.cfg.DataDir); err != nil {
		s.log.Warn("state snapshot not written", "err", err)
	}
}

// Diagnose runs the detectors over the evidence since since. It first
// writes out every queued log line (the access entries that wait for an
// exit among them) and a fresh snapshot, and then reads
// the same files an offline diagnose would.
func (s *Server) Diagnose(since time.Time) (diagnose.Report, error) {
	s.sup.SampleNow()
	s.writeSnapshot()
	// Only entries of requests cut off a moment ago wait, for an exit
	// that is late at most on a busy machine.
	s.gw.SettleAccess(gateway.MaxAccessWait)
	s.accessW.Sync(2 * time.Second)
	s.eventsW.Sync(2 * time.Second)
	ev, err := diagnose.Load(s.cfg.DataDir, since)
	if err != nil {
		return diagnose.Report{}, err
	}
	return diagnose.Run(ev), nil
}

// explainPortMismatch words the port mismatch the supervisor found as an
// instance started, as diagnose's port_mismatch finding does, with the
// fix for the app's runtime.
func explainPortMismatch(m supervisor.PortMismatch) (what, fix string) {
	return diagnose.PortMismatchText(m.Listening, m.Port, diagnose.DetectRuntime(m.Command, m.Dir))
}
