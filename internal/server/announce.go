package server

import "context"

// onAnnounce handles Announce (a boost): it is filed for the local actors it concerns
// (addressees.go), like a Create.
func (f *federation) onAnnounce(ctx context.Context, in *inbound) ([]string, error) {
	return f.addressees(ctx, in.act, in.recipient)
}
