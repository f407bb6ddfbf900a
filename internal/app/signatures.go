package app

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

// ListSignatures writes the signature profile of every peer host in the store at dsn:
// `fedforge signatures`, run in the server's pod (kubectl exec; its FEDFORGE_STORE_DSN
// names the store) or anywhere that reaches its PostgreSQL. It only reads (the server has
// migrated the schema already); SQLite's WAL lets it read while the server runs.
func ListSignatures(ctx context.Context, dsn string, w io.Writer) error {
	if dsn == "" {
		return fmt.Errorf("signatures: no store: set --store or FEDFORGE_STORE_DSN")
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("signatures: opening the store: %w", err)
	}
	defer st.Close()
	ps, err := st.ListSignatureProfiles(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPROFILE\tSOURCE\tSOFTWARE\tUPDATED")
	for _, p := range ps {
		sw := p.Software
		if sw == "" {
			sw = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Host, p.Profile, p.Source, sw, p.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
