//go:build race

package bench

// The tests run under the race detector (make test): the calsync they
// start is built with it too, so the fault tests check the real process
// for races, and the build reuses the race-instrumented packages the test
// binary was compiled from instead of compiling the Graph SDK once more
// (-trimpath would make that a different build, so it is left out).
func init() { buildFlags = []string{"-race"} }
