// Package testenv starts the real servers that tests talk to, from binaries
// on this machine, on temporary directories and free loopback ports.
//
// When a server cannot be started, tests skip on a developer machine and
// fail under CI=true: CI must never pass by skipping.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Unavailable ends a test whose server could not be started: a skip on a
// developer machine, a failure under CI=true.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true but unavailable: %v", what, err)
	}
	t.Skipf("%s unavailable (set CI=true to make this fail): %v", what, err)
}

// Postgres is a PostgreSQL server owned by one test binary.
type Postgres struct {
	dir  string
	port int
	cred *syscall.Credential
	bin  string

	mu  sync.Mutex
	cmd *exec.Cmd
	dbs atomic.Int64

	// primary is the server a replica streams from; nil for a primary.
	primary *Postgres
}

var (
	sharedOnce sync.Once
	shared     *Postgres
	sharedErr  error
)

// SharedPostgres starts, once per test binary, a PostgreSQL server; call
// StopShared from TestMain to remove it.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = StartPostgres() })
	if sharedErr != nil {
		Unavailable(t, "PostgreSQL", sharedErr)
	}
	return shared
}

// StopShared stops the server SharedPostgres started, if any.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// pgBinDir finds initdb and postgres: on PATH, else Debian's layout.
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	return "", errors.New("initdb and postgres not found on PATH or in /usr/lib/postgresql/*/bin (install Debian's postgresql package)")
}

// StartPostgres initializes a cluster in a temporary directory and starts
// it on a free port. As root, the server runs as the postgres user.
func StartPostgres() (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tidemark-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", p.dataDir(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p.port = port
	if err := p.Start(); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }

// Start starts the server (again, after Stop) on its port and waits until
// it accepts connections.
func (p *Postgres) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", p.dataDir(), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(p.port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=128MB")
	// Pdeathsig stops the server if the test binary dies without Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	logf, err := os.Create(filepath.Join(p.dir, "postgres.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), p.url("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
			return fmt.Errorf("postgres did not accept connections in 30s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Halt stops the server but keeps its data, for tests of outages.
func (p *Postgres) Halt() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	p.cmd = nil
}

// Stop stops the server and removes its directory.
func (p *Postgres) Stop() {
	p.Halt()
	os.RemoveAll(p.dir)
}

func (p *Postgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// NewDatabase creates an empty database for one test and returns its URL.
// It is dropped when the test ends.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	name := "t" + strconv.FormatInt(p.dbs.Add(1), 10) + "_" + sanitize(t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		t.Fatalf("connect to test postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, p.url("postgres"))
		if err != nil {
			return // the server is gone; its directory goes with it
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return p.url(name)
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// freePort picks a port for a test server (PostgreSQL, a replica,
// Prometheus) that stays its own while the server is down: below the
// kernel's ephemeral range, so that no listener on port 0 and no outgoing
// connection takes it, and locked by this process (a file lock that the
// test processes of other packages, running meanwhile, respect) until it
// exits. A server restarted on a port picked from the ephemeral range once
// met another test's server there and waited for it in vain.
func freePort() (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	dir := filepath.Join(os.TempDir(), "tidemark-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, err
	}
	for range 500 {
		port := 10000 + rand.IntN(low-10000)
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return 0, err
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // another test process holds it
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			f.Close() // something else listens there
			continue
		}
		l.Close()
		heldPorts.Lock()
		heldPorts.files = append(heldPorts.files, f) // open (and locked) until the process exits
		heldPorts.Unlock()
		return port, nil
	}
	return 0, fmt.Errorf("no free port found between 10000 and %d", low)
}

// heldPorts keeps the lock files of the ports freePort picked open.
var heldPorts struct {
	sync.Mutex
	files []*os.File
}

// Log returns the lines of the server's log that contain substr, to show
// in a failing test (a deadlock's detail, say).
func (p *Postgres) Log(substr string) string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ReportingGroup is the group role the reporting schema's migration grants
// read access to.
const ReportingGroup = "tidemark_reporting"

// ReportingLogin creates a login role that is only a member of
// ReportingGroup (as a dashboard's database user is) and returns dbURL with
// that user. The role is dropped when the test ends. Roles belong to the
// whole server, so each test gets its own.
func ReportingLogin(t testing.TB, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to test postgres: %v", err)
	}
	defer conn.Close(ctx)
	role := pgx.Identifier{fmt.Sprintf("reader_%d_%d", os.Getpid(), readers.Add(1))}
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role.Sanitize()+" LOGIN IN ROLE "+ReportingGroup); err != nil {
		t.Fatalf("create a reporting login: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return // the server is gone, and the role with it
		}
		defer conn.Close(ctx)
		// Its sessions end first: DROP ROLE fails while they last.
		_, _ = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role[0])
		_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+role.Sanitize())
	})
	u.User = url.User(role[0])
	return u.String()
}

var readers atomic.Int64
