package server

import "context"

// onCreate handles Create (a post, a reply): it is filed for the local actors it
// concerns (addressees.go), who read it in their inbox. A Create of a Repository forked
// from one of ours is a ForgeFed fork notice (fork.go). A Note replying to one of our
// Tickets is also written into the forge as a comment (replies.go), and so is one in the
// discussion of a pull request offered upstream (merge_request_notes.go); a Note
// mentioning a repository that takes tickets from mentions opens an issue
// (mention_ticket.go).
func (f *federation) onCreate(ctx context.Context, in *inbound) ([]string, error) {
	if repo, upstream := forkedRepository(in.act); repo != nil {
		return f.onForkNotice(ctx, in, repo, upstream)
	}
	if in.act.Type.Has("Create") {
		if err := f.replyToTicket(ctx, in); err != nil {
			return nil, err
		}
		if err := f.replyToOfferedMergeRequest(ctx, in); err != nil { // merge_request_notes.go
			return nil, err
		}
		if err := f.mentionTicket(ctx, in); err != nil { // mention_ticket.go
			return nil, err
		}
	}
	return f.addressees(ctx, in.act, in.recipient)
}
