package schema

import (
	"slices"
	"testing"
)

// Every option is accepted by exactly the types that list it, and
// refused with validation_invalid_options by every other type.
func TestFieldTypeOptions(t *testing.T) {
	one := 1.0
	set := map[string]func(f *Field){
		"min":           func(f *Field) { f.Min = &one },
		"max":           func(f *Field) { f.Max = &one },
		"pattern":       func(f *Field) { f.Pattern = "^a" },
		"onlyInt":       func(f *Field) { f.OnlyInt = true },
		"values":        func(f *Field) { f.Values = []string{"a"} },
		"maxSelect":     func(f *Field) { f.MaxSelect = 2 },
		"maxSize":       func(f *Field) { f.MaxSize = 10 },
		"mimeTypes":     func(f *Field) { f.MimeTypes = []string{"image/png"} },
		"thumbs":        func(f *Field) { f.Thumbs = []string{"10x10"} },
		"protected":     func(f *Field) { f.Protected = true },
		"collectionId":  func(f *Field) { f.CollectionID = "other" },
		"cascadeDelete": func(f *Field) { f.CascadeDelete = true },
		"onCreate":      func(f *Field) { f.OnCreate = true },
		"onUpdate":      func(f *Field) { f.OnUpdate = true },
	}
	for _, ft := range fieldTypes {
		for opt, apply := range set {
			f := &Field{Name: "f", Type: ft.Name()}
			apply(f)
			err := checkOptions(ft, f)
			if accepted := slices.Contains(ft.Options(), opt); accepted != (err == nil) {
				t.Errorf("%s with %s: %v (listed: %v)", ft.Name(), opt, err, accepted)
			}
		}
	}
}

func TestFieldTypeRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, ft := range fieldTypes {
		if seen[ft.Name()] {
			t.Errorf("type %s registered twice", ft.Name())
		}
		seen[ft.Name()] = true
		multi := &Field{Type: ft.Name(), MaxSelect: 3}
		if got := multi.Column() == ColArray; got != ft.Listable() {
			t.Errorf("%s with maxSelect 3: array column %v, listable %v", ft.Name(), got, ft.Listable())
		}
	}
	if typeOf("nope") != nil || (&Field{Type: "nope"}).Column() != ColText {
		t.Error("unknown type")
	}
}
