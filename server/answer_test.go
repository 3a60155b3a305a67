package server

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tehaishokunin/calsync/graph"
)

func TestDirectAnswerIsWhatGqlgenWouldWrite(t *testing.T) {
	withErr := func() gqlerror.List {
		return gqlerror.List{{Message: "見つかりません", Path: ast.Path{ast.PathName("calendarLink")},
			Extensions: map[string]any{"code": "NOT_FOUND", "field": "userId"}}}
	}
	cases := map[string]*graphql.Response{
		"data":              {Data: json.RawMessage(`{"a":[1,2,{"b":"c\"d"}]}`), Extensions: map[string]any{}},
		"errors and data":   {Errors: withErr(), Data: json.RawMessage(`{"calendarLink":null}`)},
		"errors, null data": {Errors: withErr()},
		"padded data":       {Data: json.RawMessage("\n{\"a\":1} \n")},
	}
	for name, resp := range cases {
		t.Run(name, func(t *testing.T) {
			if !plainAnswer(resp) {
				t.Fatal("a response of errors and data is not plain")
			}
			got, err := appendAnswer(nil, resp)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("direct answer\n%s\nencoding/json\n%s", got, want)
			}
		})
	}
}

// TestExecutedAnswersAreWrittenDirectly runs an operation through gqlgen's
// own executor: what it answers must take the direct path (gqlgen adds an
// empty extensions map to every answer, which once sent them all the slow
// way).
func TestExecutedAnswersAreWrittenDirectly(t *testing.T) {
	exec := executor.New(graph.NewExecutableSchema(graph.Config{}))
	ctx := graphql.StartOperationTrace(context.Background())
	rc, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: "{ __typename }"})
	if errs != nil {
		t.Fatal(errs)
	}
	next, ctx := exec.DispatchOperation(ctx, rc)
	resp := next(ctx)
	if !plainAnswer(resp) {
		t.Fatalf("an executed answer takes gqlgen's path: %+v", resp)
	}
	if got, _ := appendAnswer(nil, resp); string(got) != `{"data":{"__typename":"Query"}}` {
		t.Errorf("answer %s", got)
	}
}

func TestIncrementalAnswersKeepGqlgensPath(t *testing.T) {
	more := true
	for name, resp := range map[string]*graphql.Response{
		"hasNext":    {Data: json.RawMessage(`{}`), HasNext: &more},
		"label":      {Data: json.RawMessage(`{}`), Label: "slow"},
		"path":       {Data: json.RawMessage(`{}`), Path: ast.Path{ast.PathName("a")}},
		"extensions": {Data: json.RawMessage(`{}`), Extensions: map[string]any{"cost": 1}},
	} {
		if plainAnswer(resp) {
			t.Errorf("%s: written directly, would lose the field", name)
		}
	}
}

// appendAnswer appends the whole JSON of a plain answer, as DispatchOperation
// writes it.
func appendAnswer(b []byte, r *graphql.Response) ([]byte, error) {
	head, err := answerHead(r)
	if err != nil {
		return nil, err
	}
	return append(append(append(b, head...), answerData(r)...), '}'), nil
}
