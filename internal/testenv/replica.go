package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartReplica starts a streaming replica of p, as PostgreSQL's own
// replication makes one: a base backup of p's cluster taken with
// pg_basebackup -R (which writes standby.signal and the connection to the
// primary), started on a free port as a hot standby. It holds every
// database p has, and those created later. It is removed when the test
// ends.
func (p *Postgres) StartReplica(t testing.TB) *Postgres {
	t.Helper()
	r, err := p.startReplica()
	if err != nil {
		Unavailable(t, "a PostgreSQL streaming replica", err)
	}
	t.Cleanup(r.Stop)
	return r
}

func (p *Postgres) startReplica() (*Postgres, error) {
	basebackup, err := pgTool(p.bin, "pg_basebackup")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tidemark-pg-replica-")
	if err != nil {
		return nil, err
	}
	r := &Postgres{dir: dir, bin: p.bin, cred: p.cred, primary: p}
	if r.cred != nil {
		if err := os.Chown(dir, int(r.cred.Uid), int(r.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	cmd := exec.Command(basebackup, "-D", r.dataDir(), "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres",
		"-R", "-X", "stream", "-c", "fast", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_basebackup: %v: %s", err, out)
	}
	if r.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := r.Start(); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// pgTool finds a PostgreSQL client program beside the server binaries
// (following a symbolic link to initdb to the real folder), else on PATH.
func pgTool(bin, name string) (string, error) {
	dirs := []string{bin}
	if real, err := filepath.EvalSymlinks(filepath.Join(bin, "initdb")); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found beside initdb or on PATH (install Debian's postgresql package)", name)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// DatabaseURL returns the URL of the database that dbURL names, on this
// server: for a replica, the copy of a database of its primary.
func (p *Postgres) DatabaseURL(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		panic(fmt.Sprintf("testenv: database URL %q: %v", dbURL, err))
	}
	u.Host = "127.0.0.1:" + strconv.Itoa(p.port)
	return u.String()
}

func (p *Postgres) exec(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// PauseReplay stops a replica from applying what its primary sends (it
// keeps receiving it), so that its data falls behind.
func (p *Postgres) PauseReplay(t testing.TB) {
	t.Helper()
	if err := p.exec(context.Background(), `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatalf("pause replay: %v", err)
	}
}

// ResumeReplay lets a paused replica catch up.
func (p *Postgres) ResumeReplay(t testing.TB) {
	t.Helper()
	if err := p.exec(context.Background(), `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatalf("resume replay: %v", err)
	}
}

// WaitReplayed waits until a replica has replayed everything its primary
// had written when it was called.
func (p *Postgres) WaitReplayed(t testing.TB) {
	t.Helper()
	if p.primary == nil {
		t.Fatal("WaitReplayed: not a replica")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.waitReplayed(ctx); err != nil {
		t.Fatalf("replica did not catch up: %v", err)
	}
}

func (p *Postgres) waitReplayed(ctx context.Context) error {
	pc, err := pgx.Connect(ctx, p.primary.url("postgres"))
	if err != nil {
		return err
	}
	defer pc.Close(ctx)
	// The insert location, not the write location: with
	// synchronous_commit=off a commit's record can be inserted but not yet
	// written, and waiting for the write location would miss it.
	var target string
	if err := pc.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&target); err != nil {
		return err
	}
	rc, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		return err
	}
	defer rc.Close(ctx)
	for {
		var done bool
		err := rc.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, target).Scan(&done)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), fmt.Errorf("replay has not reached %s", target))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
