module github.com/gatehouse/gatehouse

go 1.26.8

require (
	github.com/DeRuina/timberjack v1.4.9
	github.com/google/go-cmp v0.7.0
	github.com/oklog/run v1.2.0
	github.com/spf13/cobra v1.10.2
	go.uber.org/goleak v1.3.0
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/sys v0.49.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/klauspost/compress v1.18.7 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)
