package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/knib/knib/internal/service/notify/notifytest"
)

// /notify: admins manage targets and rules, a test message reaches a real
// receiver, bad input is a 4xx that changes nothing, secrets never come
// back, users get 403.
func TestNotifyAPI(t *testing.T) {
	e := newEnv(t)
	hook := notifytest.StartWebhook(t, "s3cret-hook")
	var target map[string]any
	e.do(e.admin, "POST", "/notify/targets", `{"name":"hook","webhook":"`+hook.URL+`","secret":"s3cret-hook"}`, 201, &target)
	if target["has_secret"] != true || target["kind"] != "webhook" {
		t.Fatalf("target: %v", target)
	}
	e.do(e.admin, "POST", "/notify/targets", `{"name":"bad","webhook":"file:///etc/passwd","secret":"x"}`, 400, nil)
	e.do(e.admin, "POST", "/notify/targets", `{"name":"m","smtp":"mx:25","from":"a@b","to":["c@d\r\nBcc: x@y"]}`, 400, nil)
	e.do(e.admin, "POST", "/notify/targets", `{"name":"hook","webhook":"https://x/y","secret":"x"}`, 409, nil)
	e.do(e.user, "GET", "/notify/targets", "", 403, nil)
	e.do(e.user, "POST", "/notify/targets", `{"name":"u","webhook":"https://x/y","secret":"x"}`, 403, nil)

	var list []map[string]any
	e.do(e.admin, "GET", "/notify/targets", "", 200, &list)
	if len(list) != 1 || list[0]["name"] != "hook" || fmt.Sprint(list[0])+fmt.Sprint(target) != strings.ReplaceAll(fmt.Sprint(list[0])+fmt.Sprint(target), "s3cret-hook", "") {
		t.Fatalf("targets: %v", list)
	}
	e.do(e.admin, "POST", "/notify/targets/hook/test", "", 200, nil)
	if hooks := hook.Hooks(); len(hooks) != 1 || hooks[0].Event != "test" {
		t.Fatalf("test message: %+v", hooks)
	}
	hook.SetFailing(true)
	e.do(e.admin, "POST", "/notify/targets/hook/test", "", 503, nil)

	e.do(e.admin, "POST", "/notify/rules", `{"target":"hook","events":["vm.bored"]}`, 400, nil)
	e.do(e.admin, "POST", "/notify/rules", `{"target":"nope"}`, 400, nil)
	var rule map[string]any
	e.do(e.admin, "POST", "/notify/rules", `{"target":"hook","events":["vm.error"],"digest":"daily"}`, 201, &rule)
	var rules []map[string]any
	e.do(e.admin, "GET", "/notify/rules", "", 200, &rules)
	if len(rules) != 1 || rules[0]["digest"] != "daily" {
		t.Fatalf("rules: %v", rules)
	}
	e.do(e.admin, "GET", "/notify/log?state=bogus", "", 400, nil)
	e.do(e.admin, "GET", "/notify/log?state=pending&limit=5", "", 200, nil)
	e.do(e.admin, "GET", "/notify/log?limit=-1", "", 400, nil)
	e.do(e.user, "GET", "/notify/log", "", 403, nil)
	e.do(e.admin, "DELETE", "/notify/rules/"+rule["id"].(string), "", 200, nil)
	e.do(e.admin, "DELETE", "/notify/rules/"+rule["id"].(string), "", 404, nil)
	e.do(e.admin, "DELETE", "/notify/targets/hook", "", 200, nil)
	e.do(e.admin, "GET", "/notify/targets", "", 200, &list)
	if len(list) != 0 {
		t.Fatalf("targets after remove: %v", list)
	}
}
