package server

import "context"

// onCreate handles Create (a post, a reply): it is filed for the local actors it
// concerns (addressees.go), who read it in their inbox.
func (f *federation) onCreate(ctx context.Context, in *inbound) ([]string, error) {
	return f.addressees(ctx, in.act, in.recipient)
}
