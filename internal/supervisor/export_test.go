package supervisor

// Configured is the instance count the app last read from its config
// file, which an upgrade's successor compares with the file it reads.
func (a *App) Configured() int { return int(a.configured.Load()) }
