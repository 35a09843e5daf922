package agentrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/knib/knib/internal/agentapi"
)

const prefix = "/agent-api/v1"

// wireError is the body of an error answer.
type wireError struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

var codes = []struct {
	code string
	err  error
}{
	{"unknown_domain", agentapi.ErrUnknownDomain},
	{"unknown_task", agentapi.ErrUnknownTask},
	{"unknown_kind", agentapi.ErrUnknownKind},
}

func codeOf(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

func sentinelOf(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}

// remoteError is an error the agent returned; it unwraps to the agentapi
// sentinel its code names.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// wireTask is agentapi.Task on the wire: the request as the JSON of the
// command's request type.
type wireTask struct {
	ID       string          `json:"id"`
	Command  string          `json:"command"`
	Request  json.RawMessage `json:"request"`
	Deadline time.Time       `json:"deadline"`
}

func toWireTask(t agentapi.Task) (wireTask, error) {
	raw, err := json.Marshal(t.Request)
	if err != nil {
		return wireTask{}, fmt.Errorf("encode the request of %s: %w", t.Command, err)
	}
	return wireTask{ID: t.ID, Command: t.Command, Request: raw, Deadline: t.Deadline}, nil
}

// task decodes the request into the command's request type.
func (w wireTask) task() (agentapi.Task, error) {
	req, err := agentapi.DecodeRequest(w.Command, w.Request)
	if err != nil {
		return agentapi.Task{}, err
	}
	return agentapi.Task{ID: w.ID, Command: w.Command, Request: req, Deadline: w.Deadline}, nil
}

// wireStatus is agentapi.TaskStatus on the wire: the result as the JSON of
// the command's result type.
type wireStatus struct {
	ID       string             `json:"id"`
	Command  string             `json:"command"`
	State    agentapi.TaskState `json:"state"`
	Progress float64            `json:"progress"`
	Message  string             `json:"message"`
	Result   json.RawMessage    `json:"result,omitempty"`
	Error    string             `json:"error,omitempty"`
	Clean    bool               `json:"clean,omitempty"`
}

func toWireStatus(st agentapi.TaskStatus) (wireStatus, error) {
	ws := wireStatus{ID: st.ID, Command: st.Kind, State: st.State, Progress: st.Progress, Message: st.Message, Error: st.Error, Clean: st.Clean}
	if st.Result != nil {
		raw, err := json.Marshal(st.Result)
		if err != nil {
			return ws, fmt.Errorf("encode the result of %s: %w", st.Kind, err)
		}
		ws.Result = raw
	}
	return ws, nil
}

func (ws wireStatus) status() (agentapi.TaskStatus, error) {
	st := agentapi.TaskStatus{ID: ws.ID, Kind: ws.Command, State: ws.State, Progress: ws.Progress, Message: ws.Message, Error: ws.Error, Clean: ws.Clean}
	if len(ws.Result) > 0 && ws.State == agentapi.TaskSucceeded {
		res, err := agentapi.DecodeResult(ws.Command, ws.Result)
		if err != nil {
			return st, err
		}
		st.Result = res
	}
	return st, nil
}
