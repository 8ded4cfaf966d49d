package supervisor

// Readiness reports the app's share of gatehouse's readiness: ready is
// how many of its members take requests now, need how many it must have
// (min_ready, capped at what an app with a command is meant to run now:
// a stopped or idle-unloaded app needs none). An external pool's
// min_ready is not capped: an edge told to need one member is not ready
// while its DNS name has none. An app a request woke from an idle unload needs none either
// until it is first ready again: the request is held meanwhile, and the
// other apps must not be taken out of rotation with it.
func (a *App) Readiness() (ready, need int) {
	cfg := a.Config()
	need = cfg.ReadyNeeded()
	members := a.pool.Members()
	switch {
	case a.pool.Unloaded():
		need = 0
	case cfg.External():
	default:
		need = min(need, cfg.Instances)
	}
	for _, m := range members {
		if m.Routable() {
			ready++
		}
	}
	if a.waking.Load() {
		if ready < need {
			return ready, 0
		}
		a.waking.Store(false)
	}
	return ready, need
}
