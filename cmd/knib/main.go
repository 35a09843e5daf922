// Command knib is the single binary of knib: `knib server`, `knib agent` and
// the client commands.
package main

import (
	"context"
	"os"

	"github.com/knib/knib/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
