package config

// affinity checks an app's affinity keys.
func (v *validator) affinity(a *App, path string) {}
