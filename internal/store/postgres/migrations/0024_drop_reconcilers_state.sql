-- endpoint_counts keeps what this index served (live reconcilers by
-- endpoint, commit and status), and every report changed its columns, so
-- that every report's update of its reconciler rewrote it.
DROP INDEX reconcilers_state;
