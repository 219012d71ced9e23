package demo

import (
	"embed"
	"io/fs"
)

//go:embed web
var web embed.FS

// Web returns the microblog web client: static files using only the
// public API.
func Web() fs.FS {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err)
	}
	return sub
}
