// Command gatehouse runs a web app as supervised instances behind a
// gateway that names the cause of every 5xx.
package main

import (
	"os"

	"github.com/gatehouse/gatehouse/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
