package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/realtime"
	"github.com/plinthhq/plinth/internal/records"
)

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	tok, _ := strings.CutPrefix(h, "Bearer ")
	return strings.TrimSpace(tok)
}

func (s *Server) realtimeSSE(w http.ResponseWriter, r *http.Request) {
	s.opts.Realtime.ServeSSE(w, r, callerOf(r), bearer(r))
}

// realtimeSubscribe sets a client's subscriptions; the request's
// Authorization becomes the identity events are filtered for.
func (s *Server) realtimeSubscribe(w http.ResponseWriter, r *http.Request) {
	raw, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		ClientID      string            `json:"clientId"`
		Subscriptions []json.RawMessage `json:"subscriptions"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		s.fail(w, r, apierr.BadRequest("Invalid JSON body."))
		return
	}
	b := s.opts.Realtime
	c := b.Get(req.ClientID)
	if c == nil {
		s.fail(w, r, apierr.NotFound("Missing or invalid client id.").With("clientId", "validation_invalid_client", "Unknown realtime client."))
		return
	}
	subs, err := b.ParseSubscriptions(r.Context(), req.Subscriptions)
	var se *realtime.SubscriptionError
	if err != nil && !errors.As(err, &se) {
		s.fail(w, r, err)
		return
	}
	if err != nil {
		s.fail(w, r, apierr.BadRequest("Invalid subscriptions.").With("subscriptions", "validation_invalid_subscription", err.Error()))
		return
	}
	if err := b.Subscribe(c, subs, callerOf(r), bearer(r)); err != nil {
		s.fail(w, r, apierr.Forbidden(err.Error()))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) realtimeWS(w http.ResponseWriter, r *http.Request) {
	s.opts.Realtime.ServeWS(w, r, callerOf(r), bearer(r), func(ctx context.Context, tok string) (*records.Caller, error) {
		col, rec, err := s.app.Records.Authenticate(ctx, tok)
		if err != nil {
			return nil, err
		}
		return &records.Caller{AuthCollection: col, Auth: rec}, nil
	})
}
