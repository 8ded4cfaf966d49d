package config

// tls checks the tls: block.
func (v *validator) tls(t *TLS, path string) {
	if t == nil {
		return
	}
	v.address(path+".listen", t.Listen)
}
