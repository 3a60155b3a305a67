// Command calsync-bench measures calsync (see package bench) and writes
// BENCHMARKS.md.
//
//	calsync-bench [-smoke] [-out BENCHMARKS.md] [-db URL] [-only "read model,push"]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/tehaishokunin/calsync/bench"
)

func main() {
	smoke := flag.Bool("smoke", false, "a few-second run")
	out := flag.String("out", "BENCHMARKS.md", "report file")
	dsn := flag.String("db", "postgres://postgres@127.0.0.1:5432/calsync_bench?sslmode=disable", "a database the run may drop and recreate")
	bin := flag.String("bin", "", "calsync binary (built when empty)")
	only := flag.String("only", "", "comma-separated steps to run (e.g. \"read model\"); all when empty")
	procLog := flag.String("process-log", "", "write calsync's own log (stderr) to this file")
	flag.Parse()
	o := bench.Full()
	if *smoke {
		o = bench.Smoke()
	}
	o.DatabaseURL, o.Binary, o.Log = *dsn, *bin, os.Stderr
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}
	if *procLog != "" {
		f, err := os.Create(*procLog)
		if err != nil {
			fmt.Fprintln(os.Stderr, "calsync-bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		o.ProcessLog = f
	}
	rep, err := bench.Run(context.Background(), o)
	if rep != nil {
		rep.Command = "make bench"
		if *smoke {
			rep.Command = "calsync-bench -smoke"
		}
		if werr := os.WriteFile(*out, []byte(rep.Markdown()), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, werr)
		}
		fmt.Println(strings.TrimSpace(rep.Markdown()))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "calsync-bench:", err)
		os.Exit(1)
	}
}
