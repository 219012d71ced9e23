package settings

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/web"
)

// Runtime is what the server was started with that superusers may want
// to see beside the stored settings: it comes from flags and PLINTH_*
// variables, so it is read-only here (changing it means a restart).
type Runtime struct {
	RateLimits struct {
		AuthPerIP        float64 `json:"authPerIP"`
		AuthPerAccount   float64 `json:"authPerAccount"`
		MaxRequestsPerIP int     `json:"maxRequestsPerIP"`
	} `json:"rateLimits"`
	CORSOrigins    []string `json:"corsOrigins"`
	MaxBodyBytes   int64    `json:"maxBodyBytes"`
	MaxUploadBytes int64    `json:"maxUploadBytes"`
	Storage        struct {
		Kind     string `json:"kind"` // "local" or "s3"
		Endpoint string `json:"endpoint,omitempty"`
		Region   string `json:"region,omitempty"`
		Bucket   string `json:"bucket,omitempty"`
		Prefix   string `json:"prefix,omitempty"`
	} `json:"storage"`
}

// HandleRuntime answers GET /api/settings/runtime (superusers).
func (h *Handlers) HandleRuntime(w http.ResponseWriter, r *http.Request) error {
	return web.JSON(w, http.StatusOK, h.Runtime)
}

// HandleTestStorage answers POST /api/settings/test/storage (superusers):
// it writes, reads back and deletes a small probe object on the file
// storage in use, and says which step failed.
func (h *Handlers) HandleTestStorage(w http.ResponseWriter, r *http.Request) error {
	if h.Storage == nil {
		return apierr.BadRequest("No file storage is configured.")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	key := "_plinth_probe/" + strconv.FormatInt(time.Now().UnixNano(), 36)
	want := []byte("plinth storage probe")
	fail := func(step string, err error) error {
		return apierr.BadRequest("The storage test failed while "+step+".").With("storage", "storage_unreachable", err.Error())
	}
	if _, err := h.Storage.Put(ctx, key, bytes.NewReader(want), "text/plain"); err != nil {
		return fail("writing a probe object", err)
	}
	defer h.Storage.Delete(context.WithoutCancel(ctx), key)
	obj, err := h.Storage.Open(ctx, key)
	if err != nil {
		return fail("reading it back", err)
	}
	got, err := io.ReadAll(io.LimitReader(obj, 1024))
	obj.Close()
	if err != nil || !bytes.Equal(got, want) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fail("reading it back", err)
	}
	if err := h.Storage.Delete(ctx, key); err != nil {
		return fail("deleting it", err)
	}
	return web.JSON(w, http.StatusOK, map[string]any{"kind": h.Runtime.Storage.Kind, "message": "Storage works: a probe object was written, read back and deleted."})
}
