package files

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/image/draw"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"
)

// MaxThumbSource bounds the pixels of an image we agree to decode for a
// thumbnail (a small file can declare a huge canvas).
const MaxThumbSource = 40_000_000

var thumbRe = regexp.MustCompile(`^(\d{1,4})x(\d{1,4})([tbf]?)$`)

// ParseThumb validates a thumb spec: WxH (center crop), WxHt (top crop),
// WxHb (bottom crop), WxHf (fit inside), 0xH or Wx0 (keep aspect).
func ParseThumb(spec string) (w, h int, mode byte, ok bool) {
	m := thumbRe.FindStringSubmatch(spec)
	if m == nil {
		return 0, 0, 0, false
	}
	w, _ = strconv.Atoi(m[1])
	h, _ = strconv.Atoi(m[2])
	if (w == 0 && h == 0) || w > 2000 || h > 2000 {
		return 0, 0, 0, false
	}
	if m[3] != "" {
		mode = m[3][0]
	}
	return w, h, mode, true
}

// Thumbnailable reports whether a content type can be thumbnailed.
func Thumbnailable(contentType string) bool {
	switch contentType {
	case "image/jpeg", "image/png", "image/gif":
		return true
	}
	return false
}

// Thumbnailer makes thumbnails within a memory budget. Decoding is what
// costs: a small, well-compressed file can declare a canvas that takes
// hundreds of megabytes to decode, and the scaler keeps an intermediate
// buffer of its own. So each job's peak memory is estimated from the
// image header before anything is decoded; jobs share Budget bytes (a
// weighted semaphore; one over the budget is never started, the original
// is served instead), and concurrent requests for the same thumbnail wait
// for one job (single flight) rather than each decoding the source.
type Thumbnailer struct {
	budget int64
	sem    *semaphore.Weighted
	group  singleflight.Group

	// Made counts thumbnails generated; InUse and Peak track the decode
	// memory reserved now and at most, for metrics and tests.
	Made, InUse, Peak atomic.Int64
}

// DefaultThumbBudget is the decode memory all thumbnail jobs share.
const DefaultThumbBudget = 256 << 20

// NewThumbnailer returns a thumbnailer sharing budget bytes (0: default).
func NewThumbnailer(budget int64) *Thumbnailer {
	if budget <= 0 {
		budget = DefaultThumbBudget
	}
	return &Thumbnailer{budget: budget, sem: semaphore.NewWeighted(budget)}
}

// thumbTimeout bounds one thumbnail job, whoever waits for it.
const thumbTimeout = 30 * time.Second

// Get returns the storage key to serve for thumbnail spec of the file at
// src: the cached thumbnail at key, made on first use, or src itself when
// the file is not an image this can thumbnail within the budget.
func (t *Thumbnailer) Get(ctx context.Context, st Storage, src, key, spec string) (string, error) {
	if obj, err := st.Open(ctx, key); err == nil {
		obj.Close()
		return key, nil
	}
	// The job outlives a caller that gives up: others may be waiting for
	// it, and the result is cached for the next request.
	ch := t.group.DoChan(key, func() (any, error) {
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), thumbTimeout)
		defer cancel()
		return t.make(jctx, st, src, key, spec)
	})
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	}
}

func (t *Thumbnailer) make(ctx context.Context, st Storage, src, key, spec string) (string, error) {
	if obj, err := st.Open(ctx, key); err == nil { // made while we waited
		obj.Close()
		return key, nil
	}
	w, h, mode, ok := ParseThumb(spec)
	if !ok {
		return src, nil
	}
	obj, err := st.Open(ctx, src)
	if err != nil {
		return "", err
	}
	defer obj.Close()
	cfg, format, err := image.DecodeConfig(obj)
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > MaxThumbSource {
		return src, nil // not an image we can thumbnail: serve the original
	}
	plan := planThumb(cfg.Width, cfg.Height, w, h, mode)
	cost := decodeCost(cfg) + plan.scratch()
	if cost > t.budget {
		return src, nil
	}
	if err := t.sem.Acquire(ctx, cost); err != nil {
		return "", err
	}
	data, ctype, err := t.render(obj, format, plan, cost)
	if err != nil {
		return src, nil
	}
	if _, err := st.Put(ctx, key, bytes.NewReader(data), ctype); err != nil {
		return "", err
	}
	t.Made.Add(1)
	return key, nil
}

// render decodes and scales while holding cost bytes of the budget; the
// reservation ends before the (small) result is encoded.
func (t *Thumbnailer) render(obj Object, format string, plan thumbPlan, cost int64) ([]byte, string, error) {
	inUse := t.InUse.Add(cost)
	for p := t.Peak.Load(); inUse > p && !t.Peak.CompareAndSwap(p, inUse); p = t.Peak.Load() {
	}
	dst, err := func() (*image.RGBA, error) {
		defer func() { t.InUse.Add(-cost); t.sem.Release(cost) }()
		if _, err := obj.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		src, _, err := image.Decode(obj)
		if err != nil {
			return nil, err
		}
		dst := image.NewRGBA(image.Rect(0, 0, plan.dw, plan.dh))
		b := src.Bounds()
		crop := plan.crop.Add(b.Min)
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, crop, draw.Over, nil)
		return dst, nil
	}()
	if err != nil {
		return nil, "", err
	}
	return encode(dst, format)
}

// decodeCost estimates the bytes a decoded image of cfg takes.
func decodeCost(cfg image.Config) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	switch cfg.ColorModel {
	case color.GrayModel, color.AlphaModel:
		return px
	case color.Gray16Model, color.Alpha16Model:
		return px * 2
	case color.RGBA64Model, color.NRGBA64Model:
		return px * 8
	case color.YCbCrModel:
		return px * 3
	}
	if _, ok := cfg.ColorModel.(color.Palette); ok {
		return px
	}
	return px * 4
}

// thumbPlan is the geometry of one thumbnail: the source rectangle (from
// the image origin) scaled into dw×dh.
type thumbPlan struct {
	crop   image.Rectangle
	dw, dh int
}

// scratch is the scaler's working memory: a kernel scaler keeps one
// [4]float64 per destination column per source row, plus the output.
func (p thumbPlan) scratch() int64 {
	return int64(p.dw)*int64(p.crop.Dy())*32 + int64(p.dw)*int64(p.dh)*4
}

// planThumb computes the crop and size for a sw×sh source: WxH crops to
// the target aspect (centred, or top/bottom with t/b), f fits inside,
// and a 0 side keeps the aspect.
func planThumb(sw, sh, w, h int, mode byte) thumbPlan {
	if w == 0 {
		w = max(1, sw*h/max(1, sh))
	}
	if h == 0 {
		h = max(1, sh*w/max(1, sw))
	}
	crop := image.Rect(0, 0, sw, sh)
	dw, dh := w, h
	switch mode {
	case 'f':
		if sw*h > sh*w {
			dh = max(1, sh*w/sw)
		} else {
			dw = max(1, sw*h/sh)
		}
	default:
		if sw*h > sh*w {
			cw := sh * w / h
			x := (sw - cw) / 2
			crop = image.Rect(x, 0, x+cw, sh)
		} else {
			ch := sw * h / w
			y := (sh - ch) / 2
			switch mode {
			case 't':
				y = 0
			case 'b':
				y = sh - ch
			}
			crop = image.Rect(0, y, sw, y+ch)
		}
	}
	return thumbPlan{crop: crop, dw: dw, dh: dh}
}

// encode writes dst in the source's format (JPEG for anything else).
func encode(dst image.Image, format string) ([]byte, string, error) {
	var out bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&out, dst)
		return out.Bytes(), "image/png", err
	case "gif":
		err = gif.Encode(&out, dst, nil)
		return out.Bytes(), "image/gif", err
	}
	err = jpeg.Encode(&out, dst, &jpeg.Options{Quality: 85})
	return out.Bytes(), "image/jpeg", err
}
