// Command plinth runs a Plinth backend. This file only wires flags to the
// plinth package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plinthhq/plinth"
	"github.com/spf13/cobra"
)

func main() {
	if err := root().Execute(); err != nil {
		os.Exit(1)
	}
}

// globals is the configuration every command shares: plinth.Config,
// whose flags and PLINTH_* environment variables are generated from it.
type globals struct{ cfg plinth.Config }

func (g *globals) config() plinth.Config {
	cfg := g.cfg
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	return cfg
}

func root() *cobra.Command {
	g := &globals{cfg: plinth.DefaultConfig()}
	cmd := &cobra.Command{
		Use:           "plinth",
		Short:         "Plinth: a complete backend in one binary",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	if err := g.cfg.BindFlags(cmd.PersistentFlags()); err != nil {
		// A malformed PLINTH_* variable: say which, before anything runs.
		cmd.RunE = func(*cobra.Command, []string) error { return err }
		cmd.PersistentPreRunE = func(*cobra.Command, []string) error { return err }
	}
	cmd.AddCommand(serveCmd(g), demoCmd(g), superuserCmd(g), schemaCmd(g), migrateCmd(g), typegenCmd(g), versionCmd())
	return cmd
}

func serveCmd(g *globals) *cobra.Command {
	var migrate bool
	var migDir string
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
			if migrate {
				// Pending file migrations first, under the cluster lock, so
				// nodes starting together apply each once.
				if _, err := app.MigrateUp(ctx, migDir, 0); err != nil {
					return errors.Join(err, app.Close())
				}
			}
			serveErr := app.Serve(ctx, "")
			closeErr := app.Close()
			return errors.Join(serveErr, closeErr)
		},
	}
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply pending migration files from --migrations-dir before serving")
	cmd.Flags().StringVar(&migDir, "migrations-dir", "plinth_migrations", "directory of NNNN_name.json migration files")
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

func schemaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "schema", Short: "Export and import collection definitions (Plinth's or PocketBase's JSON)"}
	var deleteMissing bool
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Create or update collections from a JSON file (\"-\" reads stdin); PocketBase's \"export collections\" output works as is",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			return withApp(cmd.Context(), g, func(app *plinth.App) error {
				if err := app.ImportCollections(cmd.Context(), data, deleteMissing); err != nil {
					return describe(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Collections imported from %s.\n", args[0])
				return nil
			})
		},
	}
	imp.Flags().BoolVar(&deleteMissing, "delete-missing", false, "also delete collections the file does not list (system collections stay)")
	cmd.AddCommand(imp, &cobra.Command{
		Use:   "export [FILE]",
		Short: "Write every collection definition as JSON (to stdout without FILE)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd.Context(), g, func(app *plinth.App) error {
				data, err := app.ExportCollections()
				if err != nil {
					return err
				}
				data = append(data, '\n')
				if len(args) == 0 || args[0] == "-" {
					_, err = cmd.OutOrStdout().Write(data)
					return err
				}
				return os.WriteFile(args[0], data, 0o644)
			})
		},
	})
	return cmd
}

func typegenCmd(g *globals) *cobra.Command {
	var lang, out string
	cmd := &cobra.Command{
		Use:   "typegen",
		Short: "Write TypeScript types of the collections' records and a TypedPocketBase for the PocketBase SDK",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if lang != "ts" {
				return fmt.Errorf("--lang %q: only \"ts\" (TypeScript) is supported", lang)
			}
			return withApp(cmd.Context(), g, func(app *plinth.App) error {
				src := app.TypeScript()
				if out == "" || out == "-" {
					_, err := io.WriteString(cmd.OutOrStdout(), src)
					return err
				}
				return os.WriteFile(out, []byte(src), 0o644)
			})
		},
	}
	cmd.Flags().StringVar(&lang, "lang", "ts", "output language (ts)")
	cmd.Flags().StringVar(&out, "out", "", "file to write (stdout without it)")
	return cmd
}

// describe renders validation failures readably on the terminal.
func describe(err error) error {
	var e *plinth.Error
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
			fmt.Fprintf(cmd.ErrOrStderr(), "log in as user00001@example.com / %s at http://%s/\n", plinth.DemoPassword, cfg.HTTP)
			if noServe {
				return nil
			}
			return app.Serve(ctx, "")
		},
	}
	cmd.Flags().IntVar(&o.Users, "users", 10000, "users to seed")
	cmd.Flags().IntVar(&o.Posts, "posts", 100000, "posts to seed")
	cmd.Flags().IntVar(&o.Follows, "follows", 50000, "follows to seed")
	cmd.Flags().IntVar(&o.Likes, "likes", 50000, "likes to seed")
	cmd.Flags().Uint64Var(&o.Seed, "seed", 1, "random seed (same seed, same data)")
	cmd.Flags().BoolVar(&noServe, "seed-only", false, "create and seed, then exit")
	return cmd
}

// migrateCmd manages file migrations (NNNN_name.json with up and down
// steps) in --migrations-dir, ./plinth_migrations by default.
func migrateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Create, apply, revert and list schema migrations"}
	dir := cmd.PersistentFlags().String("migrations-dir", "plinth_migrations", "directory of NNNN_name.json migration files")
	count := func(args []string) (int, error) {
		if len(args) == 0 {
			return 0, nil
		}
		return strconv.Atoi(args[0])
	}
	withApp := func(cmd *cobra.Command, fn func(ctx context.Context, app *plinth.App) error) error {
		ctx := cmd.Context()
		app, err := plinth.New(ctx, g.config())
		if err != nil {
			return err
		}
		return errors.Join(fn(ctx, app), app.Close())
	}
	cmd.AddCommand(&cobra.Command{
		Use: "create NAME", Short: "Write an empty migration file", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := plinth.CreateMigrationFile(*dir, args[0])
			if err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), path)
			}
			return err
		},
	}, &cobra.Command{
		Use: "up [N]", Short: "Apply pending migrations (all, or the next N)", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := count(args)
			if err != nil {
				return err
			}
			return withApp(cmd, func(ctx context.Context, app *plinth.App) error {
				done, err := app.MigrateUp(ctx, *dir, n)
				for _, m := range done {
					fmt.Fprintln(cmd.OutOrStdout(), "applied", m)
				}
				return err
			})
		},
	}, &cobra.Command{
		Use: "down [N]", Short: "Revert the last N applied migrations (default 1)", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := count(args)
			if err != nil {
				return err
			}
			return withApp(cmd, func(ctx context.Context, app *plinth.App) error {
				done, err := app.MigrateDown(ctx, *dir, n)
				for _, m := range done {
					fmt.Fprintln(cmd.OutOrStdout(), "reverted", m)
				}
				return err
			})
		},
	}, &cobra.Command{
		Use: "status", Short: "List migrations and whether each is applied", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, func(ctx context.Context, app *plinth.App) error {
				st, err := app.MigrationStatus(ctx, *dir)
				for _, m := range st {
					state := "pending"
					if m.Applied {
						state = "applied"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", state, m.Name)
				}
				return err
			})
		},
	})
	return cmd
}
