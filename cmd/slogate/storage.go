package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/slogate/slogate/evaluator/pgstore"
	"github.com/slogate/slogate/evaluator/store"
)

func newStorageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Manage slogate's run store",
	}
	cmd.AddCommand(newStorageMigrateCmd())
	return cmd
}

func newStorageMigrateCmd() *cobra.Command {
	var from, to, passwordFile string
	cmd := &cobra.Command{
		Use:   "migrate --from DIR --to postgres://...",
		Short: "Copy runs from the embedded store (storage.path) to PostgreSQL (storage.url)",
		Long: `migrate copies every run, with its verdict timeline, from the embedded bbolt
store in --from (a storage.path directory) to the PostgreSQL database --to,
applying the database's schema first. It keeps the runs' IDs, so links and
run IDs that pipelines stored stay valid.

It is idempotent: runs already in the database are skipped, so it can be run
again after an interruption or to pick up runs made since. Stop the slogate
that uses --from first: the embedded store is locked while it runs. Evaluator
snapshots are not copied: the replicas backfill from Prometheus once.

The password comes from --password-file or the standard PG* environment
variables (PGPASSWORD, PGPASSFILE), never from the command line or the logs.

Exit codes: 0 copied (or nothing to copy), 1 an error, 2 bad flags.`,
		Example: `  slogate storage migrate --from data/ --to 'postgres://slogate@db:5432/slogate?sslmode=verify-full' --password-file /run/secrets/pg`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return exitWith(2, errors.New("--from (a storage.path directory) and --to (a postgres:// URL) are both required"))
			}
			// A typo in --from must not copy nothing from a new, empty store.
			if _, err := os.Stat(filepath.Join(from, store.FileName)); err != nil {
				return fmt.Errorf("--from: no slogate store in %s (%w): give the storage.path directory of the slogate to migrate", from, err)
			}
			src, err := store.Open(from, store.Options{})
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			defer func() { _ = src.Close() }()
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			dst, err := pgstore.Open(ctx, pgstore.Options{URL: to, PasswordFile: passwordFile})
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			defer func() { _ = dst.Close() }()
			res, err := pgstore.CopyRuns(src, dst)
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d runs, skipped %d already in %s\n", res.Copied, res.Skipped, dst.Path())
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "storage.path directory of the embedded store to copy from")
	cmd.Flags().StringVar(&to, "to", "", "PostgreSQL URL to copy to (storage.url)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "file holding the PostgreSQL password")
	return cmd
}
