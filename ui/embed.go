// Package ui holds the admin dashboard's sources (Preact + TypeScript,
// built by Vite) and embeds the built files in dist/, which are committed
// so that `go build` on a fresh clone needs no npm step. .ci/run rebuilds
// them and fails when the committed build is stale.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist returns the built dashboard: index.html and assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the directory is embedded at compile time
	}
	return sub
}
