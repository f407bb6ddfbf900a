package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Via says where a fork or a like was learnt: from the forge's webhook, or from a peer's
// activity. It is kept so that an admin can tell a forge's stars from the Fediverse's,
// and so that a peer's Undo can never remove a star given in the forge.
type Via string

// The two origins of a fork or a like.
const (
	// ViaForge is a fork or star the forge reported (webhook).
	ViaForge Via = "forge"
	// ViaFederation is a fork notice or Like a peer sent to an inbox.
	ViaFederation Via = "federation"
)

// Fork is one repository listed in a local Repository actor's ForgeFed forks collection.
type Fork struct {
	// ActorID is the local Repository actor that was forked (the upstream).
	ActorID string
	// ForkID is the fork: its actor id when a peer announced it, its page on the forge
	// when the forge reported it. One fork is listed once per upstream.
	ForkID string
	// Via says where it was learnt.
	Via Via
	// ActivityID is the peer's activity that announced the fork (empty for the forge).
	ActivityID string
	// Created is when it was recorded (UTC).
	Created time.Time
}

// Like is one star of a local Repository actor, listed in its likes collection. A liker
// likes a repository once: a second Like from the same actor changes nothing.
type Like struct {
	// ActorID is the local actor that was liked.
	ActorID string
	// LikerID is who liked it: the remote actor id, or the forge user's profile page.
	LikerID string
	// LikeID is the Like activity's id (empty for a star reported by the forge).
	LikeID string
	// Via says where it was learnt.
	Via Via
	// Created is when it was recorded (UTC).
	Created time.Time
}

// ForkPage is one keyset page of a forks collection, newest first.
type ForkPage struct {
	Items []Fork
	// Next is the cursor of the following (older) page, empty on the last page.
	Next string
}

// LikePage is one keyset page of a likes collection, newest first.
type LikePage struct {
	Items []Like
	// Next is the cursor of the following (older) page, empty on the last page.
	Next string
}

// RepoSurface is what the store keeps of a Repository actor's ForgeFed surface beyond
// its spec: the forks and likes collections. They are traffic (any peer can like), not
// intent, so they live here and not in etcd.
type RepoSurface interface {
	// RecordFork lists a fork under its upstream unless it is listed already; created
	// is false for a repeat (a forge's retry, a peer's second notice).
	RecordFork(ctx context.Context, f Fork) (created bool, err error)
	// RemoveFork unlists a fork; removed is false when it was not listed.
	RemoveFork(ctx context.Context, actorID, forkID string) (removed bool, err error)
	// ListForks returns one keyset page of an actor's forks, newest first.
	ListForks(ctx context.Context, actorID, cursor string, limit int) (ForkPage, error)
	// CountForks returns the number of forks listed under an actor.
	CountForks(ctx context.Context, actorID string) (int64, error)

	// RecordLike counts a like unless the same liker already likes the actor (one like
	// per liker); created is false for such a repeat.
	RecordLike(ctx context.Context, l Like) (created bool, err error)
	// GetLike returns the like recorded for the Like activity likeID, or ErrNotFound.
	GetLike(ctx context.Context, likeID string) (Like, error)
	// RemoveLike removes the like of likerID from actorID if it came the given way;
	// removed is false when there was none.
	RemoveLike(ctx context.Context, actorID, likerID string, via Via) (removed bool, err error)
	// ListLikes returns one keyset page of an actor's likes, newest first.
	ListLikes(ctx context.Context, actorID, cursor string, limit int) (LikePage, error)
	// CountLikes returns the number of likes of an actor (its likes' totalItems).
	CountLikes(ctx context.Context, actorID string) (int64, error)
}

func validVia(v Via) bool { return v == ViaForge || v == ViaFederation }

// RecordFork implements RepoSurface.
func (s *sqlStore) RecordFork(ctx context.Context, f Fork) (bool, error) {
	if f.ActorID == "" || f.ForkID == "" || !validVia(f.Via) {
		return false, fmt.Errorf("store: fork needs an actor, a fork and a known via (got %q, %q, %q)", f.ActorID, f.ForkID, f.Via)
	}
	if f.Created.IsZero() {
		f.Created = utcNow()
	}
	var created bool
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `INSERT INTO repo_forks (actor_id, fork_id, via, activity_id, created) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (actor_id, fork_id) DO NOTHING`, f.ActorID, f.ForkID, string(f.Via), f.ActivityID, micros(f.Created))
		if err != nil {
			return fmt.Errorf("store: record fork %s of %s: %w", f.ForkID, f.ActorID, err)
		}
		n, _ := res.RowsAffected()
		created = n == 1
		return nil
	})
	return created, err
}

// RemoveFork implements RepoSurface.
func (s *sqlStore) RemoveFork(ctx context.Context, actorID, forkID string) (bool, error) {
	var removed bool
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `DELETE FROM repo_forks WHERE actor_id = ? AND fork_id = ?`, actorID, forkID)
		if err != nil {
			return fmt.Errorf("store: remove fork %s of %s: %w", forkID, actorID, err)
		}
		n, _ := res.RowsAffected()
		removed = n > 0
		return nil
	})
	return removed, err
}

// ListForks implements RepoSurface.
func (s *sqlStore) ListForks(ctx context.Context, actorID, cursor string, limit int) (ForkPage, error) {
	var page ForkPage
	next, err := s.pageOf(ctx, "repo_forks", "fork_id, via, activity_id, created", actorID, cursor, limit, func(scan func(...any) error) error {
		f := Fork{ActorID: actorID}
		var via string
		var created int64
		if err := scan(&f.ForkID, &via, &f.ActivityID, &created); err != nil {
			return err
		}
		f.Via, f.Created = Via(via), fromMicros(created)
		page.Items = append(page.Items, f)
		return nil
	})
	page.Next = next
	return page, err
}

// CountForks implements RepoSurface.
func (s *sqlStore) CountForks(ctx context.Context, actorID string) (int64, error) {
	return s.countOf(ctx, "repo_forks", actorID)
}

// RecordLike implements RepoSurface.
func (s *sqlStore) RecordLike(ctx context.Context, l Like) (bool, error) {
	if l.ActorID == "" || l.LikerID == "" || !validVia(l.Via) {
		return false, fmt.Errorf("store: like needs an actor, a liker and a known via (got %q, %q, %q)", l.ActorID, l.LikerID, l.Via)
	}
	if l.Created.IsZero() {
		l.Created = utcNow()
	}
	var created bool
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `INSERT INTO repo_likes (actor_id, liker_id, like_id, via, created) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (actor_id, liker_id) DO NOTHING`, l.ActorID, l.LikerID, l.LikeID, string(l.Via), micros(l.Created))
		if err != nil {
			return fmt.Errorf("store: record like of %s by %s: %w", l.ActorID, l.LikerID, err)
		}
		n, _ := res.RowsAffected()
		created = n == 1
		return nil
	})
	return created, err
}

// GetLike implements RepoSurface.
func (s *sqlStore) GetLike(ctx context.Context, likeID string) (Like, error) {
	if likeID == "" {
		return Like{}, fmt.Errorf("like without id: %w", ErrNotFound)
	}
	l := Like{LikeID: likeID}
	var via string
	var created int64
	err := s.queryRow(ctx, `SELECT actor_id, liker_id, via, created FROM repo_likes WHERE like_id = ? ORDER BY seq DESC LIMIT 1`, likeID).
		Scan(&l.ActorID, &l.LikerID, &via, &created)
	if err != nil {
		return Like{}, notFound(err, "like "+likeID)
	}
	l.Via, l.Created = Via(via), fromMicros(created)
	return l, nil
}

// RemoveLike implements RepoSurface.
func (s *sqlStore) RemoveLike(ctx context.Context, actorID, likerID string, via Via) (bool, error) {
	var removed bool
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `DELETE FROM repo_likes WHERE actor_id = ? AND liker_id = ? AND via = ?`, actorID, likerID, string(via))
		if err != nil {
			return fmt.Errorf("store: remove like of %s by %s: %w", actorID, likerID, err)
		}
		n, _ := res.RowsAffected()
		removed = n > 0
		return nil
	})
	return removed, err
}

// ListLikes implements RepoSurface.
func (s *sqlStore) ListLikes(ctx context.Context, actorID, cursor string, limit int) (LikePage, error) {
	var page LikePage
	next, err := s.pageOf(ctx, "repo_likes", "liker_id, like_id, via, created", actorID, cursor, limit, func(scan func(...any) error) error {
		l := Like{ActorID: actorID}
		var via string
		var created int64
		if err := scan(&l.LikerID, &l.LikeID, &via, &created); err != nil {
			return err
		}
		l.Via, l.Created = Via(via), fromMicros(created)
		page.Items = append(page.Items, l)
		return nil
	})
	page.Next = next
	return page, err
}

// CountLikes implements RepoSurface.
func (s *sqlStore) CountLikes(ctx context.Context, actorID string) (int64, error) {
	return s.countOf(ctx, "repo_likes", actorID)
}

// countOf counts an actor's rows of one of the two collection tables (a constant name).
func (s *sqlStore) countOf(ctx context.Context, table, actorID string) (int64, error) {
	var n int64
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM `+table+` WHERE actor_id = ?`, actorID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count %s of %s: %w", table, actorID, err)
	}
	return n, nil
}

// pageOf reads one keyset page (seq descending) of an actor's rows of table, selecting
// cols and handing each row to each; it returns the next page's cursor.
func (s *sqlStore) pageOf(ctx context.Context, table, cols, actorID, cursor string, limit int, each func(scan func(...any) error) error) (string, error) {
	limit = clampLimit(limit)
	var b strings.Builder
	args := []any{actorID}
	b.WriteString(`SELECT seq, ` + cols + ` FROM ` + table + ` WHERE actor_id = ?`)
	if cursor != "" {
		key, err := decodeCursor(cursor, 1)
		if err != nil {
			return "", err
		}
		b.WriteString(` AND seq < ?`)
		args = append(args, key[0])
	}
	b.WriteString(` ORDER BY seq DESC LIMIT ?`)
	args = append(args, limit+1)
	rows, err := s.query(ctx, b.String(), args...)
	if err != nil {
		return "", fmt.Errorf("store: list %s of %s: %w", table, actorID, err)
	}
	defer rows.Close()
	var n int
	var seq, last int64
	for rows.Next() {
		if n == limit {
			return encodeCursor(last), rows.Err()
		}
		err := each(func(dest ...any) error { return rows.Scan(append([]any{&seq}, dest...)...) })
		if err != nil {
			return "", fmt.Errorf("store: list %s of %s: %w", table, actorID, err)
		}
		last = seq
		n++
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("store: list %s of %s: %w", table, actorID, err)
	}
	return "", nil
}
