// Command meshguard detects attacks in a service mesh from its telemetry
// and responds to them. main only wires packages together: each stage is
// built from validated config and started and stopped here, in order.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "meshguard:", err)
		os.Exit(1)
	}
}
