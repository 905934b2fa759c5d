-- slogate schema 1: runs, their timelines, evaluator snapshots, leases and
-- the SLO statuses each shard publishes. Applied once, in one transaction,
-- by pgstore.migrate; never edited after a release: later changes are new
-- files.

CREATE TABLE runs (
	id          text PRIMARY KEY,
	experiment  text NOT NULL,
	state       text NOT NULL,
	started_ns  bigint NOT NULL,           -- StartedAt in Unix nanoseconds: exact ordering
	record      jsonb NOT NULL,            -- store.Run without its timeline
	supervisor  text NOT NULL DEFAULT '',  -- the replica whose lease last supervised it
	updated_at  timestamptz NOT NULL DEFAULT now()
);

-- At most one active run per experiment, whichever replica starts it: two
-- racing starts cannot both insert.
CREATE UNIQUE INDEX runs_one_active ON runs (experiment) WHERE state IN ('running', 'recovering');
CREATE INDEX runs_newest_first ON runs (started_ns DESC, id DESC);

CREATE TABLE run_timeline (
	run_id  text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	seq     bigint GENERATED ALWAYS AS IDENTITY,
	entry   jsonb NOT NULL,
	PRIMARY KEY (run_id, seq)
);

CREATE TABLE snapshots (
	key         text PRIMARY KEY,
	data        bytea NOT NULL,
	updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A lease is held by one replica until expires_at (the database's clock,
-- so that replicas' clocks do not matter); fence grows with every change of
-- holder, and a write made under a lease checks it.
CREATE TABLE leases (
	name        text PRIMARY KEY,
	holder      text NOT NULL,
	fence       bigint NOT NULL,
	expires_at  timestamptz NOT NULL
);

CREATE TABLE slo_statuses (
	name          text PRIMARY KEY,
	shard_index   integer NOT NULL,
	shard_count   integer NOT NULL,
	replica       text NOT NULL,
	status        jsonb NOT NULL,
	evaluated_at  timestamptz NOT NULL,
	published_at  timestamptz NOT NULL DEFAULT now()
);
