package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/knib/knib/internal/api"
)

// GET /tokens lists tokens without their secrets; DELETE /tokens/{id}
// revokes one: it authenticates nobody afterwards. Both are for admins.
func TestTokensListAndRevoke(t *testing.T) {
	e := newEnv(t)
	var tok api.Token
	e.do(e.admin, "POST", "/tokens", `{"account":"alice","role":"user","name":"ci"}`, 201, &tok)
	e.do(tok.Token, "GET", "/whoami", "", 200, nil)
	var list []api.TokenInfo
	e.do(e.admin, "GET", "/tokens?account=alice", "", 200, &list)
	raw, _ := json.Marshal(list)
	if len(list) < 2 || strings.Contains(string(raw), tok.Token) || strings.Contains(string(raw), "hash") {
		t.Fatalf("alice's tokens: %s", raw)
	}
	found := false
	for _, x := range list {
		found = found || (x.ID == tok.ID && x.Account == "alice" && x.Role == "user" && x.Name == "ci" && !x.Created.IsZero())
	}
	if !found {
		t.Fatalf("the new token is not listed: %s", raw)
	}
	e.do(e.user, "GET", "/tokens", "", 403, nil)
	e.do(e.user, "DELETE", "/tokens/"+tok.ID, "", 403, nil)
	e.do(tok.Token, "GET", "/whoami", "", 200, nil) // a refused revocation changed nothing
	e.do(e.admin, "DELETE", "/tokens/"+tok.ID, "", 200, nil)
	e.do(tok.Token, "GET", "/whoami", "", 401, nil)
	e.do(e.admin, "DELETE", "/tokens/"+tok.ID, "", 404, nil)
	e.do(e.admin, "GET", "/tokens?account=nobody", "", 404, nil)
}
