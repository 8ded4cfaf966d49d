// Package adoption owns what lets one gatehouse take over the app
// processes another left running on the same data_dir: an upgrade's
// successor, a gatehouse started after one that was killed hard, or one
// taking back what it left to a successor that failed.
//
// It owns data_dir/processes.json (Records): every running process with
// what proves its identity (pid and start time, boot id), the apps' state
// at run time, this run's token (GATEHOUSE_RUN, in every process's
// environment), and whether the record can be handed over at all
// (HandoverErr). It owns the leftovers of a predecessor: which recorded
// processes are still running and provably theirs (a reused pid or
// process group never is), and stopping those no one adopts (TakeOver).
// And it owns the exit status files the shims write under data_dir/run
// (StatusFiles): where a new one goes, and sweeping those no adopted
// process will read.
//
// Which records are adopted, and as which instance, is the supervisor's
// to decide (TakeOver's keep); this package imports nothing of it.
package adoption
