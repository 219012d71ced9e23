package oauth

import (
	"slices"
	"testing"

	"github.com/plinthhq/plinth/internal/schema"
)

// The providers a collection may name are exactly those the registry
// implements.
func TestRegistryMatchesSchema(t *testing.T) {
	var names []string
	for n := range registry {
		names = append(names, n)
	}
	want := slices.Clone(schema.OAuth2ProviderNames)
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("registry %v, schema.OAuth2ProviderNames %v", names, want)
	}
}
