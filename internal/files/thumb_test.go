package files

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"sync"
	"testing"
)

func putPNG(t *testing.T, st Storage, key string, w, h int) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(context.Background(), key, &b, "image/png"); err != nil {
		t.Fatal(err)
	}
}

func TestThumbnailerSingleFlightAndBudget(t *testing.T) {
	st := Local{Dir: t.TempDir()}
	putPNG(t, st, "c/r/big.png", 2000, 2000) // 4 MB decoded + scratch
	cases := []struct {
		name   string
		budget int64
		specs  []string
		made   int64
		served func(spec string) string
	}{
		{"same thumbnail at once is made once", 64 << 20, []string{"100x100"}, 1, func(s string) string { return ThumbKey("c", "r", "big.png", s) }},
		{"two sizes, each once", 64 << 20, []string{"100x100", "20x0"}, 2, func(s string) string { return ThumbKey("c", "r", "big.png", s) }},
		{"over the budget: the original", 1 << 20, []string{"100x100"}, 0, func(string) string { return "c/r/big.png" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, s := range c.specs {
				st.Delete(context.Background(), ThumbKey("c", "r", "big.png", s))
			}
			th := NewThumbnailer(c.budget)
			var wg sync.WaitGroup
			for i := 0; i < 16; i++ {
				spec := c.specs[i%len(c.specs)]
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := th.Get(context.Background(), st, "c/r/big.png", ThumbKey("c", "r", "big.png", spec), spec)
					if err != nil || got != c.served(spec) {
						t.Errorf("Get %s = %q, %v; want %q", spec, got, err, c.served(spec))
					}
				}()
			}
			wg.Wait()
			if got := th.Made.Load(); got != c.made {
				t.Errorf("made %d thumbnails, want %d", got, c.made)
			}
			if th.Peak.Load() > c.budget {
				t.Errorf("reserved %d bytes at peak, over the %d budget", th.Peak.Load(), c.budget)
			}
		})
	}
}

func TestPlanThumb(t *testing.T) {
	for _, c := range []struct {
		sw, sh, w, h int
		mode         byte
		crop         image.Rectangle
		dw, dh       int
	}{
		{200, 100, 50, 50, 0, image.Rect(50, 0, 150, 100), 50, 50},
		{100, 200, 50, 50, 't', image.Rect(0, 0, 100, 100), 50, 50},
		{100, 200, 50, 50, 'b', image.Rect(0, 100, 100, 200), 50, 50},
		{200, 100, 50, 50, 'f', image.Rect(0, 0, 200, 100), 50, 25},
		{200, 100, 0, 50, 0, image.Rect(0, 0, 200, 100), 100, 50},
	} {
		p := planThumb(c.sw, c.sh, c.w, c.h, c.mode)
		if p.crop != c.crop || p.dw != c.dw || p.dh != c.dh {
			t.Errorf("planThumb(%d,%d,%d,%d,%q) = %v %dx%d, want %v %dx%d", c.sw, c.sh, c.w, c.h, c.mode, p.crop, p.dw, p.dh, c.crop, c.dw, c.dh)
		}
	}
}
