// Command graphemu runs the Microsoft identity + Graph v1.0 emulator on its
// own, for calsync (CALSYNC_GRAPH=emulator with CALSYNC_GRAPH_BASE_URL,
// CALSYNC_LOGIN_BASE_URL and CALSYNC_GRAPH_CA_FILE), demos and load tests.
//
//	graphemu --addr 127.0.0.1:8443 --cert-out FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tehaishokunin/calsync/graphemu"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "listen address")
	certOut := flag.String("cert-out", "", "write the emulator's CA certificate (PEM) to this file")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := graphemu.Start(*addr, graphemu.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "graphemu:", err)
		os.Exit(1)
	}
	defer srv.Close()
	if *certOut != "" {
		if err := os.WriteFile(*certOut, srv.CAPEM, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "graphemu: writing --cert-out:", err)
			os.Exit(1)
		}
	}
	log.Info("graphemu listening", slog.String("url", srv.URL), slog.String("ca", *certOut))
	fmt.Println(srv.URL)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}
