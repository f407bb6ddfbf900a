package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// defaultUnavailableAfterDays is Mastodon's threshold: failures on 7 distinct days.
const defaultUnavailableAfterDays = 7

// utcDay numbers the UTC calendar day of t, the unit of "distinct failure days".
func utcDay(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// hostSuccessSQL resets one host's failure state (host, false, last success in micros):
// RecordHostSuccess, and MarkDeliveredBatch for marks naming a host.
const hostSuccessSQL = `INSERT INTO hosts (host, consecutive_failures, failure_days, last_failure_day, unavailable, last_success)
	VALUES (?, 0, 0, -1, ?, ?)
	ON CONFLICT (host) DO UPDATE SET consecutive_failures = 0, failure_days = 0, last_failure_day = -1,
		unavailable = excluded.unavailable, last_success = excluded.last_success`

// RecordHostSuccess implements Store.
func (s *sqlStore) RecordHostSuccess(ctx context.Context, host string, at time.Time) error {
	if host == "" {
		return errors.New("store: host success without host")
	}
	return s.inTx(ctx, func(t tx) error {
		_, err := t.exec(ctx, hostSuccessSQL, host, false, micros(at))
		if err != nil {
			return fmt.Errorf("store: record success of host %s: %w", host, err)
		}
		return nil
	})
}

// RecordHostFailure implements Store.
func (s *sqlStore) RecordHostFailure(ctx context.Context, host string, at time.Time, unavailableAfterDays int) (HostState, error) {
	if host == "" {
		return HostState{}, errors.New("store: host failure without host")
	}
	if unavailableAfterDays <= 0 {
		unavailableAfterDays = defaultUnavailableAfterDays
	}
	var st HostState
	err := s.inTx(ctx, func(t tx) error {
		_, err := t.exec(ctx, `INSERT INTO hosts (host, consecutive_failures, failure_days, last_failure_day, unavailable, last_failure)
			VALUES (?, 1, 1, ?, ?, ?)
			ON CONFLICT (host) DO UPDATE SET
				consecutive_failures = hosts.consecutive_failures + 1,
				failure_days = hosts.failure_days +
					CASE WHEN excluded.last_failure_day > hosts.last_failure_day THEN 1 ELSE 0 END,
				last_failure_day = CASE WHEN excluded.last_failure_day > hosts.last_failure_day
					THEN excluded.last_failure_day ELSE hosts.last_failure_day END,
				last_failure = excluded.last_failure`,
			host, utcDay(at), false, micros(at))
		if err != nil {
			return fmt.Errorf("store: record failure of host %s: %w", host, err)
		}
		if _, err := t.exec(ctx, `UPDATE hosts SET unavailable = (unavailable OR failure_days >= ?) WHERE host = ?`,
			unavailableAfterDays, host); err != nil {
			return fmt.Errorf("store: record failure of host %s: %w", host, err)
		}
		st, err = scanHost(t.queryRow(ctx, `SELECT `+hostColumns+` FROM hosts WHERE host = ?`, host))
		if err != nil {
			return fmt.Errorf("store: record failure of host %s: %w", host, err)
		}
		return nil
	})
	return st, err
}

const hostColumns = `host, consecutive_failures, failure_days, unavailable, last_success, last_failure`

func scanHost(sc interface{ Scan(...any) error }) (HostState, error) {
	var (
		st            HostState
		success, fail int64
	)
	if err := sc.Scan(&st.Host, &st.ConsecutiveFailures, &st.FailureDays, &st.Unavailable, &success, &fail); err != nil {
		return HostState{}, err
	}
	st.LastSuccess, st.LastFailure = fromMicros(success), fromMicros(fail)
	return st, nil
}

// GetHostState implements Store.
func (s *sqlStore) GetHostState(ctx context.Context, host string) (HostState, error) {
	st, err := scanHost(s.queryRow(ctx, `SELECT `+hostColumns+` FROM hosts WHERE host = ?`, host))
	if err != nil {
		if errors.Is(notFound(err, ""), ErrNotFound) {
			return HostState{Host: host}, nil
		}
		return HostState{}, fmt.Errorf("store: host %s: %w", host, err)
	}
	return st, nil
}

// ListUnavailableHosts implements Store.
func (s *sqlStore) ListUnavailableHosts(ctx context.Context) ([]HostState, error) {
	rows, err := s.query(ctx, `SELECT `+hostColumns+` FROM hosts WHERE unavailable = ? ORDER BY host`, true)
	if err != nil {
		return nil, fmt.Errorf("store: list unavailable hosts: %w", err)
	}
	defer rows.Close()
	var out []HostState
	for rows.Next() {
		st, err := scanHost(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list unavailable hosts: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}
