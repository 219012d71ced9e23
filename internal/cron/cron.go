// Package cron runs jobs on cron schedules. On several nodes sharing a
// database each scheduled run happens once: the node that first records
// the (job, minute) slot runs it, the others see the slot taken.
package cron

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plinthhq/plinth/internal/sqldb"
)

// Schedule is a parsed five-field cron expression: minute, hour, day of
// month, month, day of week (0 or 7 is Sunday). Each field takes *,
// numbers, ranges (1-5), lists (1,15) and steps (*/10, 0-30/5); the
// shortcuts @hourly, @daily (@midnight), @weekly, @monthly and @yearly
// are accepted. As in classic cron, when both day fields are restricted a
// day matching either runs.
type Schedule struct {
	minute, hour, dom, month, dow uint64 // bit sets
	domStar, dowStar              bool
}

var shortcuts = map[string]string{
	"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
	"@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}

// Parse reads a cron expression.
func Parse(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	if s, ok := shortcuts[spec]; ok {
		spec = s
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		return nil, fmt.Errorf("cron: %q: want 5 fields (minute hour day-of-month month day-of-week)", spec)
	}
	var s Schedule
	var err error
	bounds := [5][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}
	sets := [5]*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	names := [5]string{"minute", "hour", "day of month", "month", "day of week"}
	for i := range f {
		if *sets[i], err = parseField(f[i], bounds[i][0], bounds[i][1]); err != nil {
			return nil, fmt.Errorf("cron: %q: %s: %v", spec, names[i], err)
		}
	}
	if s.dow&(1<<7) != 0 {
		s.dow |= 1 // 7 is Sunday too
	}
	s.domStar, s.dowStar = f[2] == "*", f[4] == "*"
	return &s, nil
}

func parseField(f string, lo, hi int) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(f, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("invalid step %q", stepText)
			}
			step = n
		}
		from, to := lo, hi
		if rng != "*" {
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if from, err = strconv.Atoi(a); err != nil {
				return 0, fmt.Errorf("invalid value %q", a)
			}
			to = from
			if isRange {
				if to, err = strconv.Atoi(b); err != nil {
					return 0, fmt.Errorf("invalid value %q", b)
				}
			} else if hasStep {
				to = hi
			}
		}
		if from < lo || to > hi || from > to {
			return 0, fmt.Errorf("%q out of range %d-%d", part, lo, hi)
		}
		for v := from; v <= to; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

// Matches reports whether the schedule runs in the minute of t.
func (s *Schedule) Matches(t time.Time) bool {
	if s.minute&(1<<uint(t.Minute())) == 0 || s.hour&(1<<uint(t.Hour())) == 0 || s.month&(1<<uint(t.Month())) == 0 {
		return false
	}
	dom, dow := s.dom&(1<<uint(t.Day())) != 0, s.dow&(1<<uint(t.Weekday())) != 0
	switch {
	case s.domStar && s.dowStar:
		return true
	case s.domStar:
		return dow
	case s.dowStar:
		return dom
	}
	return dom || dow
}

// Job is a registered job.
type Job struct {
	Name     string
	Spec     string
	schedule *Schedule
	run      func(ctx context.Context) error
}

// Scheduler runs registered jobs at their times.
type Scheduler struct {
	db   *sqldb.DB
	log  *slog.Logger
	node string
	mu   sync.Mutex
	jobs map[string]*Job
}

// New returns a scheduler that records runs in db (nil: single node, no
// records).
func New(db *sqldb.DB, log *slog.Logger, node string) *Scheduler {
	return &Scheduler{db: db, log: log, node: node, jobs: map[string]*Job{}}
}

// Add registers (or replaces) job name on a cron schedule.
func (s *Scheduler) Add(name, spec string, run func(ctx context.Context) error) error {
	sched, err := Parse(spec)
	if err != nil {
		return err
	}
	if strings.TrimSpace(name) == "" || len(name) > 100 {
		return fmt.Errorf("cron: a job needs a name of 1 to 100 characters")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[name] = &Job{Name: name, Spec: spec, schedule: sched, run: run}
	return nil
}

// Jobs lists the registered jobs by name.
func (s *Scheduler) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Job, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, Job{Name: j.Name, Spec: j.Spec})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// Run ticks at the start of every minute until ctx ends, running the jobs
// due in that minute (each in its own goroutine, once per cluster).
func (s *Scheduler) Run(ctx context.Context) {
	for {
		now := time.Now()
		next := now.Truncate(time.Minute).Add(time.Minute)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		s.Tick(ctx, next)
	}
}

// Tick runs the jobs due in the minute of t (Run calls it; tests may).
func (s *Scheduler) Tick(ctx context.Context, t time.Time) {
	slot := t.UTC().Truncate(time.Minute)
	s.mu.Lock()
	var due []*Job
	for _, j := range s.jobs {
		if j.schedule.Matches(slot) {
			due = append(due, j)
		}
	}
	s.mu.Unlock()
	for _, j := range due {
		if !s.claim(ctx, j.Name, slot) {
			continue
		}
		go func(j *Job) {
			defer func() {
				if p := recover(); p != nil {
					s.log.Error("cron: job panicked", "job", j.Name, "panic", fmt.Sprint(p))
				}
			}()
			if err := j.run(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("cron: job failed", "job", j.Name, "err", err)
			}
		}(j)
	}
}

// claim records the (job, slot) run; only the first node to do so runs it.
func (s *Scheduler) claim(ctx context.Context, job string, slot time.Time) bool {
	if s.db == nil {
		return true
	}
	b := sqldb.NewBuilder(s.db.Dialect)
	_, err := b.Exec(ctx, s.db.Write, "INSERT INTO _cronRuns (job, slot, node) VALUES ("+b.Arg(job)+", "+b.Arg(slot.Format(time.RFC3339))+", "+b.Arg(s.node)+")")
	if err != nil {
		if _, dup := s.db.Dialect.UniqueViolation(err); !dup && ctx.Err() == nil {
			s.log.Warn("cron: cannot record a run", "job", job, "err", err)
		}
		return false
	}
	if slot.Minute() == 0 {
		// Once an hour, forget runs older than a day.
		b := sqldb.NewBuilder(s.db.Dialect)
		b.Exec(ctx, s.db.Write, "DELETE FROM _cronRuns WHERE slot < "+b.Arg(slot.Add(-24*time.Hour).Format(time.RFC3339)))
	}
	return true
}
