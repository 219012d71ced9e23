// Command plinth runs a Plinth backend. This file only wires flags to the
// plinth package.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/plinthhq/plinth"
	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/spf13/cobra"
)

func main() {
	if err := root().Execute(); err != nil {
		os.Exit(1)
	}
}

type globals struct {
	dir          string
	db           string
	s3           plinth.S3Config
	rateIP       float64
	rateAccount  float64
	proxies      []string
	pgMaxConns   int
	pgStmtTimout time.Duration
	perIP        int
	minBodyRate  int64
	bodyGrace    time.Duration
	thumbMemory  int64
}

func (g *globals) config() plinth.Config {
	db := g.db
	if db == "" {
		db = os.Getenv("PLINTH_DB")
	}
	s3 := g.s3
	if s3.SecretKey == "" {
		s3.SecretKey = os.Getenv("PLINTH_S3_SECRET_KEY") // keeps the secret out of the process list
	}
	return plinth.Config{DataDir: g.dir, DB: db, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		PGMaxConns: g.pgMaxConns, PGStatementTimeout: g.pgStmtTimout, S3: s3,
		AuthRatePerIP: g.rateIP, AuthRatePerAccount: g.rateAccount, TrustedProxies: g.proxies,
		MaxRequestsPerIP: g.perIP, MinBodyRate: g.minBodyRate, BodyGrace: g.bodyGrace, ThumbMemory: g.thumbMemory}
}

func root() *cobra.Command {
	g := &globals{}
	cmd := &cobra.Command{
		Use:           "plinth",
		Short:         "Plinth: a complete backend in one binary",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	cmd.PersistentFlags().StringVar(&g.dir, "dir", "./plinth_data", "data directory (embedded database and files)")
	cmd.PersistentFlags().StringVar(&g.db, "db", "", "database URL, e.g. postgres://user@host/db (default: embedded SQLite in --dir; env PLINTH_DB)")
	cmd.PersistentFlags().IntVar(&g.pgMaxConns, "pg-max-conns", 20, "PostgreSQL: maximum open connections of this node")
	cmd.PersistentFlags().DurationVar(&g.pgStmtTimout, "pg-statement-timeout", 30*time.Second, "PostgreSQL: abort statements running longer than this")
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.s3.Endpoint, "s3-endpoint", "", "S3-compatible endpoint for file storage, e.g. https://s3.eu-west-1.amazonaws.com (default: local disk in --dir)")
	pf.StringVar(&g.s3.Region, "s3-region", "", "S3 region")
	pf.StringVar(&g.s3.Bucket, "s3-bucket", "", "S3 bucket (enables S3 storage)")
	pf.StringVar(&g.s3.AccessKey, "s3-access-key", "", "S3 access key")
	pf.StringVar(&g.s3.SecretKey, "s3-secret-key", "", "S3 secret key (or env PLINTH_S3_SECRET_KEY)")
	pf.BoolVar(&g.s3.PathStyle, "s3-path-style", false, "address the bucket in the URL path (MinIO and most self-hosted services)")
	pf.Float64Var(&g.rateIP, "auth-rate-ip", 60, "login attempts a minute per client IP (negative: no limit)")
	pf.Float64Var(&g.rateAccount, "auth-rate-account", 10, "login attempts a minute per account (negative: no limit)")
	pf.StringSliceVar(&g.proxies, "trusted-proxy", nil, "CIDR of a reverse proxy whose X-Forwarded-For is trusted (repeatable)")
	pf.IntVar(&g.perIP, "max-requests-per-ip", 512, "requests in flight per client IP, realtime streams included (negative: no cap)")
	pf.Int64Var(&g.minBodyRate, "min-body-rate", 1024, "bytes a second a request body must average after --body-grace (negative: no minimum)")
	pf.DurationVar(&g.bodyGrace, "body-grace", 10*time.Second, "time a request body may take before --min-body-rate applies")
	pf.Int64Var(&g.thumbMemory, "thumb-memory", 256<<20, "bytes of memory all thumbnail decodes share; larger images are served unscaled")
	cmd.AddCommand(serveCmd(g), demoCmd(g), superuserCmd(g), versionCmd())
	return cmd
}

func serveCmd(g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Start the HTTP server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			app, err := plinth.New(ctx, g.config())
			if err != nil {
				return err
			}
			serveErr := app.Serve(ctx, addr)
			closeErr := app.Close()
			return errors.Join(serveErr, closeErr)
		},
	}
	cmd.Flags().StringVar(&addr, "http", "127.0.0.1:8090", "address to listen on")
	return cmd
}

func superuserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "superuser", Short: "Manage superuser accounts"}
	cmd.AddCommand(&cobra.Command{
		Use:   "upsert EMAIL [PASSWORD]",
		Short: "Create a superuser or change its password (prompted from stdin when omitted)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw := ""
			if len(args) == 2 {
				pw = args[1]
			} else {
				fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
				var line string
				if _, err := fmt.Fscanln(cmd.InOrStdin(), &line); err != nil {
					return fmt.Errorf("read password: %w", err)
				}
				pw = strings.TrimSpace(line)
			}
			return withApp(cmd.Context(), g, func(app *plinth.App) error {
				if err := app.UpsertSuperuser(cmd.Context(), args[0], pw); err != nil {
					return describe(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Superuser %s saved.\n", args[0])
				return nil
			})
		},
	}, &cobra.Command{
		Use:   "delete EMAIL",
		Short: "Delete a superuser",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd.Context(), g, func(app *plinth.App) error {
				ok, err := app.DeleteSuperuser(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("no superuser %s", args[0])
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Superuser %s deleted.\n", args[0])
				return nil
			})
		},
	})
	return cmd
}

// describe renders validation failures readably on the terminal.
func describe(err error) error {
	var e *apierr.Error
	if errors.As(err, &e) && len(e.Data) > 0 {
		var parts []string
		for k, v := range e.Data {
			parts = append(parts, k+": "+v.Message)
		}
		return fmt.Errorf("%s (%s)", e.Message, strings.Join(parts, "; "))
	}
	return err
}

func withApp(ctx context.Context, g *globals, fn func(*plinth.App) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	app, err := plinth.New(ctx, g.config())
	if err != nil {
		return err
	}
	return errors.Join(fn(app), app.Close())
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "plinth %s\n", plinth.Version)
		},
	}
}

func demoCmd(g *globals) *cobra.Command {
	var addr string
	var o plinth.DemoOptions
	var noServe bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Create and seed the microblog showcase, then serve it with its web client",
		Long: "Creates the microblog collections and rules (users, posts, follows, likes, timeline) in the\n" +
			"data directory, seeds them deterministically when they are empty, and serves the API with a\n" +
			"small web client at /. Every seeded user (user00001@example.com ...) has the password " + plinth.DemoPassword + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := g.config()
			cfg.Static = plinth.DemoWeb()
			app, err := plinth.New(ctx, cfg)
			if err != nil {
				return err
			}
			defer app.Close()
			fresh, err := app.InstallDemo(ctx)
			if err != nil {
				return describe(err)
			}
			if fresh {
				start := time.Now()
				if err := app.SeedDemo(ctx, o); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "seeded %d users, %d posts, %d follows, %d likes in %s\n", o.Users, o.Posts, o.Follows, o.Likes, time.Since(start).Round(time.Millisecond))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "log in as user00001@example.com / %s at http://%s/\n", plinth.DemoPassword, addr)
			if noServe {
				return nil
			}
			return app.Serve(ctx, addr)
		},
	}
	cmd.Flags().StringVar(&addr, "http", "127.0.0.1:8090", "address to listen on")
	cmd.Flags().IntVar(&o.Users, "users", 10000, "users to seed")
	cmd.Flags().IntVar(&o.Posts, "posts", 100000, "posts to seed")
	cmd.Flags().IntVar(&o.Follows, "follows", 50000, "follows to seed")
	cmd.Flags().IntVar(&o.Likes, "likes", 50000, "likes to seed")
	cmd.Flags().Uint64Var(&o.Seed, "seed", 1, "random seed (same seed, same data)")
	cmd.Flags().BoolVar(&noServe, "seed-only", false, "create and seed, then exit")
	return cmd
}
