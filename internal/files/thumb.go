package files

import (
	"bytes"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"regexp"
	"strconv"

	"golang.org/x/image/draw"
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

// Thumb renders a thumbnail of the image in r per spec, in the source's
// format.
func Thumb(r io.Reader, spec string) ([]byte, string, error) {
	w, h, mode, ok := ParseThumb(spec)
	if !ok {
		return nil, "", errors.New("invalid thumb size")
	}
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, "", err
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", err
	}
	if cfg.Width*cfg.Height > MaxThumbSource {
		return nil, "", errors.New("image too large to thumbnail")
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", err
	}
	sb := src.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	if w == 0 {
		w = max(1, sw*h/max(1, sh))
	}
	if h == 0 {
		h = max(1, sh*w/max(1, sw))
	}
	crop := sb
	dw, dh := w, h
	switch mode {
	case 'f': // fit inside w×h, keep aspect
		if sw*h > sh*w {
			dh = max(1, sh*w/sw)
		} else {
			dw = max(1, sw*h/sh)
		}
	default: // crop to the target aspect
		if sw*h > sh*w {
			cw := sh * w / h
			x := sb.Min.X + (sw-cw)/2
			crop = image.Rect(x, sb.Min.Y, x+cw, sb.Max.Y)
		} else {
			ch := sw * h / w
			y := sb.Min.Y + (sh-ch)/2
			switch mode {
			case 't':
				y = sb.Min.Y
			case 'b':
				y = sb.Max.Y - ch
			}
			crop = image.Rect(sb.Min.X, y, sb.Max.X, y+ch)
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, crop, draw.Over, nil)
	var out bytes.Buffer
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
