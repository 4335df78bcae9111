package servicesdemo

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// child is one service run as a child process of the exactly binary, so
// that a kill is a real SIGKILL. Its fields are owned by the demo's loop;
// done is closed by the goroutine that reaps the process.
type child struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	started time.Time
	killed  bool // the demo killed it: its exit is expected
	kills   int
	starts  int
	crashes int // exits the demo did not cause
}

func (c *child) start(wg *sync.WaitGroup) error {
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	cmd := exec.Command(c.bin, c.args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	c.cmd, c.done, c.killed = cmd, make(chan struct{}), false
	c.starts++
	c.started = time.Now()
	done := c.done
	wg.Go(func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	})
	return nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process and waits until it is reaped.
func (c *child) kill() {
	c.killed = true
	if !c.exited() {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		c.kills++
	}
	<-c.done
}

// stop asks the process to end (SIGTERM: it commits or aborts and leaves)
// and kills it after grace.
func (c *child) stop(grace time.Duration) {
	c.killed = true
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
	}
}

// reviveCrashed restarts a child that exited without being killed, and
// counts it.
func (c *child) reviveCrashed(wg *sync.WaitGroup) error {
	if c.exited() && !c.killed {
		c.crashes++
		return c.start(wg)
	}
	return nil
}
