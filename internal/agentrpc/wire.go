package agentrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
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
	// The domain's sentinels, so that the server answers a remote agent's
	// refusal as it answers a local one's (404, 409, 403, 503).
	{"not_found", domain.ErrNotFound},
	{"conflict", domain.ErrConflict},
	{"forbidden", domain.ErrForbidden},
	{"unavailable", domain.ErrUnavailable},
}

// codeInvalid marks an answer that is a *domain.InvalidError (bad input).
const codeInvalid = "invalid"

func codeOf(err error) string {
	var inv *domain.InvalidError
	if errors.As(err, &inv) {
		return codeInvalid
	}
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

// answerError is the error an agent's error answer stands for.
func answerError(we wireError) error {
	if we.Code == codeInvalid {
		return &domain.InvalidError{Reason: we.Error}
	}
	return &remoteError{msg: we.Error, sentinel: sentinelOf(we.Code)}
}

// codec decodes one command's request and result from JSON. JSON exists
// here only: in process, requests and results travel as typed values.
type codec struct {
	request func(raw []byte) (any, error)
	result  func(raw []byte) (any, error)
}

func codecOf[Req, Res any](c agentapi.Command[Req, Res]) (string, codec) {
	return c.Name, codec{
		request: func(raw []byte) (any, error) {
			var r Req
			err := json.Unmarshal(raw, &r)
			return r, err
		},
		result: func(raw []byte) (any, error) {
			var r Res
			err := json.Unmarshal(raw, &r)
			return r, err
		},
	}
}

// codecs holds every host command of agentapi (a test checks that none is
// missing).
var codecs = func() map[string]codec {
	m := map[string]codec{}
	for _, add := range []func() (string, codec){
		func() (string, codec) { return codecOf(agentapi.TakeBackup) },
		func() (string, codec) { return codecOf(agentapi.Reconcile) },
		func() (string, codec) { return codecOf(agentapi.MergeBackup) },
		func() (string, codec) { return codecOf(agentapi.DeleteFiles) },
		func() (string, codec) { return codecOf(agentapi.Compress) },
		func() (string, codec) { return codecOf(agentapi.FinalizeCompression) },
		func() (string, codec) { return codecOf(agentapi.RestoreHere) },
		func() (string, codec) { return codecOf(agentapi.Undefine) },
		func() (string, codec) { return codecOf(agentapi.Restore) },
		func() (string, codec) { return codecOf(agentapi.RestoreVolume) },
		func() (string, codec) { return codecOf(agentapi.CreateVM) },
		func() (string, codec) { return codecOf(agentapi.Definition) },
		func() (string, codec) { return codecOf(agentapi.Consolidate) },
		func() (string, codec) { return codecOf(agentapi.AttachDisk) },
		func() (string, codec) { return codecOf(agentapi.DetachDisk) },
		func() (string, codec) { return codecOf(agentapi.SnapshotCreate) },
		func() (string, codec) { return codecOf(agentapi.SnapshotRevert) },
		func() (string, codec) { return codecOf(agentapi.SnapshotDelete) },
		func() (string, codec) { return codecOf(agentapi.StorageStat) },
		func() (string, codec) { return codecOf(agentapi.StorageCopy) },
		func() (string, codec) { return codecOf(agentapi.Validate) },
		func() (string, codec) { return codecOf(agentapi.Hash) },
		func() (string, codec) { return codecOf(agentapi.CleanupValidation) },
		func() (string, codec) { return codecOf(agentapi.RestoreFiles) },
		func() (string, codec) { return codecOf(agentapi.OffsitePut) },
		func() (string, codec) { return codecOf(agentapi.OffsiteGet) },
	} {
		name, c := add()
		m[name] = c
	}
	return m
}()

func decodeRequest(name string, raw []byte) (any, error) {
	c, ok := codecs[name]
	if !ok {
		return nil, fmt.Errorf("command %q: %w", name, agentapi.ErrUnknownKind)
	}
	v, err := c.request(raw)
	if err != nil {
		return nil, fmt.Errorf("decode %s request: %w", name, err)
	}
	return v, nil
}

func decodeResult(name string, raw []byte) (any, error) {
	c, ok := codecs[name]
	if !ok {
		return nil, fmt.Errorf("command %q: %w", name, agentapi.ErrUnknownKind)
	}
	v, err := c.result(raw)
	if err != nil {
		return nil, fmt.Errorf("decode %s result: %w", name, err)
	}
	return v, nil
}

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
	req, err := decodeRequest(w.Command, w.Request)
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
	Damaged  []agentapi.Damage  `json:"damaged,omitempty"`
	// LeftPaused: see agentapi.TaskStatus.
	LeftPaused bool `json:"left_paused,omitempty"`
}

func toWireStatus(st agentapi.TaskStatus) (wireStatus, error) {
	ws := wireStatus{ID: st.ID, Command: st.Kind, State: st.State, Progress: st.Progress, Message: st.Message, Error: st.Error, Clean: st.Clean,
		Damaged: st.Damaged, LeftPaused: st.LeftPaused}
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
	st := agentapi.TaskStatus{ID: ws.ID, Kind: ws.Command, State: ws.State, Progress: ws.Progress, Message: ws.Message, Error: ws.Error, Clean: ws.Clean,
		Damaged: ws.Damaged, LeftPaused: ws.LeftPaused}
	if len(ws.Result) > 0 && ws.State == agentapi.TaskSucceeded {
		res, err := decodeResult(ws.Command, ws.Result)
		if err != nil {
			return st, err
		}
		st.Result = res
	}
	return st, nil
}
