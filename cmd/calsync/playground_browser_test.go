package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPlaygroundInBrowser loads the Playground in headless Chromium, runs
// the first example operation (registering the demo tenant's credentials
// with the pre-filled development token) and checks the answer on the
// page. With CALSYNC_UPDATE_SCREENSHOT=1 (make screenshot) it saves the
// screenshot the README shows.
func TestPlaygroundInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run scripts/ensure-test-packages.sh (make test does)")
	}
	a := startApp(t, nil)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	err = chromedp.Do(ctx,
		chromedp.Navigate(a.base+"/playground"),
		chromedp.WaitVisible(chromedp.CSS(`.graphiql-execute-button`)),
		chromedp.Click(chromedp.CSS(`.graphiql-execute-button`)),
	)
	if err != nil {
		t.Fatalf("opening the Playground: %v", err)
	}
	response, err := chromedp.Run(ctx, chromedp.Poll[string](
		`(() => { const r = document.querySelector('.graphiql-response'); const s = r ? r.innerText : ""; return s.includes("VERIFIED") ? s : false; })()`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		text, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.body.innerText`))
		if shot, serr := chromedp.Run(context.WithoutCancel(ctx), chromedp.FullScreenshot(100)); serr == nil {
			_ = os.WriteFile(filepath.Join(t.TempDir(), "failed.png"), shot, 0o644)
			_ = os.WriteFile("/tmp/playground-failed.png", shot, 0o644)
		}
		t.Fatalf("waiting for the answer on the page: %v\npage text: %.2000s", err, text)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !strings.Contains(response, `"status": "VERIFIED"`) || !strings.Contains(response, demoTenantID) {
		t.Fatalf("the Playground shows %q", response)
	}
	if strings.Contains(response, demoSecret) {
		t.Fatal("the secret is shown in the Playground answer")
	}
	// `make screenshot` refreshes the README's picture; other runs keep
	// theirs with the test's files.
	out := filepath.Join(t.TempDir(), "playground.png")
	if os.Getenv("CALSYNC_UPDATE_SCREENSHOT") == "1" {
		out = filepath.Join("..", "..", "docs", "playground.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatalf("saving the screenshot: %v", err)
	}
}
