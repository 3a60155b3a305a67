package server

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
)

// The GraphiQL assets are vendored (graphiql 4.1.2, react 18.2.0; MIT, see
// playground/assets/LICENSES.txt) so the Playground works on closed
// networks and in tests without a CDN.
//
//go:embed playground/assets
var playgroundAssets embed.FS

// PlaygroundTab is an example operation the Playground opens with.
type PlaygroundTab struct {
	Title     string `json:"-"`
	Query     string `json:"query"`
	Variables string `json:"variables,omitempty"`
}

// PlaygroundConfig is what the Playground page shows.
type PlaygroundConfig struct {
	Tabs []PlaygroundTab
	// Headers pre-fills the headers editor (e.g. a development token with
	// the emulator); empty in production.
	Headers map[string]string
}

var playgroundPage = template.Must(template.New("playground").Parse(`<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>calsync GraphQL Playground</title>
<link rel="stylesheet" href="/playground/assets/graphiql.min.css">
<style>html,body{margin:0;height:100%}#graphiql{height:100vh}</style>
</head>
<body>
<div id="graphiql">Loading the Playground…</div>
<script src="/playground/assets/react.production.min.js"></script>
<script src="/playground/assets/react-dom.production.min.js"></script>
<script src="/playground/assets/graphiql.min.js"></script>
<script>
const url = location.protocol + "//" + location.host + "/graphql";
const subscriptionUrl = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/graphql";
// The headers editor's values go with every request and, for
// subscriptions, in the websocket's connection_init payload.
const fetcher = (params, opts) => {
  const headers = (opts && opts.headers) || {};
  return GraphiQL.createFetcher({ url, subscriptionUrl, headers, wsConnectionParams: headers })(params, opts);
};
const tabs = {{.Tabs}};
const headers = {{.Headers}};
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultTabs: tabs.map(t => ({ query: t.query, variables: t.variables, headers })),
    defaultHeaders: headers,
    // GraphiQL takes the first tab's variables from these, not from defaultTabs.
    initialVariables: tabs.length ? tabs[0].variables : undefined,
    variables: tabs.length ? tabs[0].variables : undefined,
    defaultEditorToolsVisibility: true,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
    storage: sessionStorage,
  })
);
</script>
</body>
</html>
`))

func playgroundHandler(cfg PlaygroundConfig) http.Handler {
	assets, _ := fs.Sub(playgroundAssets, "playground/assets")
	files := http.StripPrefix("/playground/assets/", http.FileServer(http.FS(assets)))
	tabs, _ := json.Marshal(cfg.Tabs)
	headers := "{}"
	if len(cfg.Headers) > 0 {
		b, _ := json.MarshalIndent(cfg.Headers, "", "  ")
		headers = string(b)
	}
	data := struct{ Tabs, Headers template.JS }{template.JS(tabs), template.JS(mustJSONString(headers))}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/playground" && r.URL.Path != "/playground/" {
			w.Header().Set("Cache-Control", "public, max-age=86400")
			files.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = playgroundPage.Execute(w, data)
	})
}

// mustJSONString quotes s as a JSON (and so JavaScript) string literal.
func mustJSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
