package webhooks

import (
	"context"
	"database/sql"
	"net/http"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/web"
)

// HandleList answers GET /api/webhooks (paged; secrets not shown).
func (s *Service) HandleList(w http.ResponseWriter, r *http.Request) error {
	page, perPage, skipTotal, err := web.PageParams(r)
	if err != nil {
		return err
	}
	hooks, err := s.all(r.Context(), false, perPage, (page-1)*perPage)
	if err != nil {
		return err
	}
	items := make([]*Webhook, 0, len(hooks))
	for _, h := range hooks {
		h.Secret = ""
		s.names(h)
		items = append(items, h)
	}
	total := -1
	if !skipTotal {
		if err := s.db.Read.QueryRowContext(r.Context(), "SELECT COUNT(*) FROM _webhooks").Scan(&total); err != nil {
			return err
		}
	}
	return web.Page(w, page, perPage, total, items)
}

// HandleCreate answers POST /api/webhooks; the answer shows the secret,
// the only time it is shown.
func (s *Service) HandleCreate(w http.ResponseWriter, r *http.Request) error {
	raw, err := web.ReadJSON(r)
	if err != nil {
		return err
	}
	h, err := s.Create(r.Context(), raw)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, h)
}

// HandleView answers GET /api/webhooks/{id}.
func (s *Service) HandleView(w http.ResponseWriter, r *http.Request) error {
	h, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	h.Secret = ""
	s.names(h)
	return web.JSON(w, http.StatusOK, h)
}

// HandleUpdate answers PATCH /api/webhooks/{id}.
func (s *Service) HandleUpdate(w http.ResponseWriter, r *http.Request) error {
	raw, err := web.ReadJSON(r)
	if err != nil {
		return err
	}
	h, err := s.Update(r.Context(), r.PathValue("id"), raw)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, h)
}

// HandleDelete answers DELETE /api/webhooks/{id}.
func (s *Service) HandleDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.Delete(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	return web.NoContent(w)
}

// Delivery is one row of the delivery log.
type Delivery struct {
	ID          string `json:"id"`
	Webhook     string `json:"webhook"`
	EventID     string `json:"eventId"`
	Status      string `json:"status"`
	Attempts    int    `json:"attempts"`
	NextAttempt string `json:"nextAttempt"`
	LastStatus  int    `json:"lastStatus"`
	LastError   string `json:"lastError"`
	Created     string `json:"created"`
	Updated     string `json:"updated"`
}

// HandleDeliveries answers GET /api/webhooks/{id}/deliveries: the
// delivery log, newest change first, optionally ?status=pending|delivered|failed.
func (s *Service) HandleDeliveries(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := s.Get(r.Context(), id); err != nil {
		return err
	}
	page, perPage, skipTotal, err := web.PageParams(r)
	if err != nil {
		return err
	}
	b := sqldb.NewBuilder(s.db.Dialect)
	where := " WHERE webhook = " + b.Arg(id)
	switch st := r.URL.Query().Get("status"); st {
	case "":
	case StatusPending, StatusDelivered, StatusFailed:
		where += " AND status = " + b.Arg(st)
	default:
		return apierr.BadRequest("Invalid status parameter.").With("status", "validation_invalid_status", "One of pending, delivered, failed.")
	}
	total := -1
	if !skipTotal {
		if err := b.QueryRow(r.Context(), s.db.Read, "SELECT COUNT(*) FROM _webhookDeliveries"+where).Scan(&total); err != nil {
			return err
		}
	}
	rows, err := b.Query(r.Context(), s.db.Read, "SELECT id, webhook, seq, status, attempts, nextAttempt, lastStatus, lastError, created, updated FROM _webhookDeliveries"+
		where+" ORDER BY seq DESC LIMIT "+b.Arg(perPage)+" OFFSET "+b.Arg((page-1)*perPage))
	if err != nil {
		return err
	}
	defer rows.Close()
	items := []Delivery{}
	for rows.Next() {
		var d Delivery
		var seq int64
		if err := rows.Scan(&d.ID, &d.Webhook, &seq, &d.Status, &d.Attempts, &d.NextAttempt, &d.LastStatus, &d.LastError, &d.Created, &d.Updated); err != nil {
			return err
		}
		d.EventID = itoa(seq)
		items = append(items, d)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return web.Page(w, page, perPage, total, items)
}

// HandleRetry answers POST /api/webhooks/{id}/deliveries/{delivery}/retry:
// a delivery given up (or waiting for its next attempt) is tried again
// now, with a new retry period.
func (s *Service) HandleRetry(w http.ResponseWriter, r *http.Request) error {
	id, did := r.PathValue("id"), r.PathValue("delivery")
	now := schema.FormatDate(time.Now())
	b := sqldb.NewBuilder(s.db.Dialect)
	res, err := b.Exec(r.Context(), s.db.Write, "UPDATE _webhookDeliveries SET status = "+b.Arg(StatusPending)+", nextAttempt = "+b.Arg(now)+", created = "+b.Arg(now)+
		", updated = "+b.Arg(now)+" WHERE id = "+b.Arg(did)+" AND webhook = "+b.Arg(id)+" AND status <> "+b.Arg(StatusDelivered))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apierr.NotFound("No delivery to retry (unknown, or already delivered).")
	}
	s.clog.Committed()
	return web.NoContent(w)
}

// PruneLog removes delivered and given-up deliveries older than maxAge.
func (s *Service) PruneLog(ctx context.Context, maxAge time.Duration) (int64, error) {
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		b := sqldb.NewBuilder(s.db.Dialect)
		res, err := b.Exec(ctx, tx, "DELETE FROM _webhookDeliveries WHERE status <> "+b.Arg(StatusPending)+" AND updated < "+b.Arg(schema.FormatDate(time.Now().Add(-maxAge))))
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	return n, err
}

func itoa(n int64) string { return sqldb.Itoa(int(n)) }
