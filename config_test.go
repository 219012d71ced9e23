package plinth

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestBindFlagsEnvAndFlags(t *testing.T) {
	t.Setenv("PLINTH_PG_MAX_CONNS", "7")
	t.Setenv("PLINTH_S3_SECRET_KEY", "from-env")
	t.Setenv("PLINTH_CORS_ORIGINS", "https://a.example, https://b.example")
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	if err := cfg.BindFlags(fs); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--http", "0.0.0.0:9000", "--body-grace", "3s", "--s3-path-style"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"flag", cfg.HTTP, "0.0.0.0:9000"},
		{"duration flag", cfg.BodyGrace, 3 * time.Second},
		{"bool flag in a nested struct", cfg.S3.PathStyle, true},
		{"env", cfg.PGMaxConns, 7},
		{"env in a nested struct", cfg.S3.SecretKey, "from-env"},
		{"env list", cfg.CORSOrigins, []string{"https://a.example", "https://b.example"}},
		{"default", cfg.MinBodyRate, int64(1024)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestBindFlagsBadEnv(t *testing.T) {
	t.Setenv("PLINTH_PG_MAX_CONNS", "many")
	cfg := DefaultConfig()
	if err := cfg.BindFlags(pflag.NewFlagSet("test", pflag.ContinueOnError)); err == nil {
		t.Fatal("a malformed PLINTH_PG_MAX_CONNS was accepted")
	}
}

func TestWithDefaultsFillsOnlyZeroFields(t *testing.T) {
	got := Config{DataDir: "/data", MinBodyRate: -1, PasswordHashing: HashParams{Iterations: 1}}.withDefaults()
	def := DefaultConfig()
	if got.DataDir != "/data" || got.MinBodyRate != -1 || got.PasswordHashing.Iterations != 1 {
		t.Errorf("set fields changed: %+v", got)
	}
	if got.HTTP != def.HTTP || got.PasswordHashing.MemoryKiB != def.PasswordHashing.MemoryKiB || got.Logger == nil {
		t.Errorf("zero fields not defaulted: %+v", got)
	}
}

// Every option comes with its flag and environment variable.
func ExampleConfig_BindFlags() {
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("myapp", pflag.ContinueOnError)
	if err := cfg.BindFlags(fs); err != nil {
		panic(err)
	}
	_ = fs.Parse([]string{"--dir", "/var/lib/myapp", "--pg-max-conns", "40"})
	fmt.Println(cfg.DataDir, cfg.PGMaxConns, EnvName("pg-max-conns"))
	// Output: /var/lib/myapp 40 PLINTH_PG_MAX_CONNS
}
