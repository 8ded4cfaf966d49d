// Package diagnose owns `gatehouse diagnose`: it gathers evidence (the
// events log, the access log and a snapshot of every instance's state and
// process statistics, all under data_dir) and runs independent detectors
// over it, each naming a root cause of 5xx errors, or of refusals by a
// route's rules that look like a setting gone wrong, with its evidence
// and a concrete fix. The same evidence is read live and offline, so a copied
// data_dir diagnoses the same as the running gatehouse did.
package diagnose
