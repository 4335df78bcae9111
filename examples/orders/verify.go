package orders

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// VerifyOptions configures Verify. The zero value checks the default topics
// without the payment stage.
type VerifyOptions struct {
	// Payments enables the payment-stage checks (CheckPayments), reading
	// PaymentsTopic and PaymentsDLQTopic. The default value is false.
	Payments bool

	// OrdersTopic, EventsTopic, DLQTopic, PaymentsTopic and
	// PaymentsDLQTopic name the topics. The default values are
	// TopicOrders, TopicEvents, TopicDLQ, TopicPayments and
	// TopicPaymentsDLQ.
	OrdersTopic, EventsTopic, DLQTopic, PaymentsTopic, PaymentsDLQTopic string

	// StableTopics are further topics (changelogs, for example) checked
	// only for E5. The default value is none.
	StableTopics []string

	// StableWait is how long Verify waits for every last stable offset to
	// reach its high watermark before it reports E5 and starts reading.
	// Real brokers write commit markers asynchronously, so a pipeline that
	// just stopped may need a moment. The default value is 0 (check once).
	StableWait time.Duration

	// IdleTimeout bounds how long reading may make no progress. A partition
	// with an open transaction (an E5 violation) may end in records that
	// read_committed never shows; reading it stops after IdleTimeout. For
	// any other partition no progress is an error. The default value is 10s.
	IdleTimeout time.Duration

	// MaxViolations caps Report.Violations; further violations are only
	// counted. The default value is 50.
	MaxViolations int

	// Resets are the group's committed offsets of OrdersTopic, per
	// partition, at each state reset (`exactly run --reset-state`), oldest
	// first; a partition missing from a reset had nothing committed (0).
	// A reset rebuilds the state from those offsets on, from empty: the
	// orders of partition p at offsets from Resets[k][p] on (and below
	// Resets[k+1][p]) form epoch k+1, folded from empty state with a
	// duplicate check of their own. E1 then wants one event per order per
	// epoch that applies it (an upstream duplicate across a reset is
	// applied again), E2 wants counts and totals to restart in every
	// epoch, E3 is unchanged, and Report.Expected is the fold of the last
	// epoch only: the state the instances must hold. Offsets must not
	// decrease from one reset to the next (offsets moved back replay
	// inputs; E1-E3 cannot hold then). The default value is none: one
	// epoch, the whole topic.
	Resets []map[int32]int64
}

// validate checks Resets: the offsets of a partition never go back.
func (o *VerifyOptions) validate() error {
	for k := 1; k < len(o.Resets); k++ {
		for p, at := range o.Resets[k-1] {
			if next := o.Resets[k][p]; next < at {
				return fmt.Errorf("orders: verify options: reset %d moves partition %d back from %d to %d", k+1, p, at, next)
			}
		}
	}
	return nil
}

// epoch returns the reset epoch of the order at partition p, offset o: the
// number of resets at or below it.
func (o *VerifyOptions) epoch(p int32, offset int64) int {
	n := 0
	for _, r := range o.Resets {
		if r[p] <= offset {
			n++
		}
	}
	return n
}

func (o *VerifyOptions) ensureDefaults() {
	setDefault(&o.OrdersTopic, TopicOrders)
	setDefault(&o.EventsTopic, TopicEvents)
	setDefault(&o.DLQTopic, TopicDLQ)
	setDefault(&o.PaymentsTopic, TopicPayments)
	setDefault(&o.PaymentsDLQTopic, TopicPaymentsDLQ)
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Second
	}
	if o.MaxViolations <= 0 {
		o.MaxViolations = 50
	}
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// dataTopics returns the topics Verify reads, in reading order.
func (o *VerifyOptions) dataTopics() []string {
	ts := []string{o.OrdersTopic, o.EventsTopic, o.DLQTopic}
	if o.Payments {
		ts = append(ts, o.PaymentsTopic, o.PaymentsDLQTopic)
	}
	return ts
}

// stableTopics returns the topics checked for E5.
func (o *VerifyOptions) stableTopics() []string {
	ts := o.dataTopics()
	for _, t := range o.StableTopics {
		if !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	return ts
}

// Verify reads the pipeline's topics completely with read_committed and
// checks the invariants of the reference application:
//
//   - E1 every valid order appears in the events exactly once, and there is
//     no event for anything else;
//   - E2 per customer the event counts run 1..n without gap or repeat in
//     partition order, and every event equals the fold of the orders in
//     partition order (so totals are the running sums);
//   - E3 every malformed order is in the dead-letter topic exactly once
//     (matched by its source headers, key and value byte-equal), and
//     nothing else is;
//   - payments (with opts.Payments) exactly one payment per event, attempt
//     1, amounts equal, and nothing dead-lettered by the payment stage;
//   - E5 no transaction is left hanging: on every topic the last stable
//     offset equals the high watermark.
//
// With opts.Resets, E1, E2 and the fold are per reset epoch (see Resets).
//
// Violations of the data are reported in the Report; an error means
// Verify could not finish (listing offsets, fetching, ctx). Report.Expected
// is the fold, for callers that check E4 against local state.
//
// Every topic read must exist. Verify uses cl for admin requests (kadm)
// only, and reads with its own clients built from cl's options minus its
// consumer, group and producer options: seed brokers, TLS, SASL, dialer and
// logger carry over. It reads a snapshot: each partition up to the last
// stable offset listed when Verify starts, so run it after the pipeline
// stopped or drained.
func Verify(ctx context.Context, cl *kgo.Client, opts VerifyOptions) (*Report, error) {
	opts.ensureDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	v := &verifier{
		opts:     opts,
		adm:      kadm.NewClient(cl),
		cl:       cl,
		report:   newReport(opts.MaxViolations, opts.Payments),
		fold:     newFold(len(opts.Resets)),
		events:   newEventIndex(),
		dlq:      make(map[position]int),
		payments: make(map[orderKey]int),
	}
	v.report.Resets = len(opts.Resets)
	if err := v.run(ctx); err != nil {
		return nil, err
	}
	return v.report, nil
}

// verifier holds one Verify call's state.
type verifier struct {
	opts   VerifyOptions
	adm    *kadm.Client
	cl     *kgo.Client // readers are built from its options
	report *Report
	snap   *exactlytest.Offsets
	fold   *fold
	events *eventIndex

	dlq      map[position]int // dead-letter records per malformed input
	payments map[orderKey]int // payments per order
}

// run lists offsets, checks E5, then reads and checks each topic in order:
// the fold of the orders first, as every other check compares with it.
func (v *verifier) run(ctx context.Context) error {
	snap, err := v.takeSnapshot(ctx)
	if err != nil {
		return err
	}
	v.snap = snap
	v.checkStable()
	v.checkStarts()
	if err := v.readTopic(ctx, v.opts.OrdersTopic, v.foldOrder); err != nil {
		return err
	}
	v.report.Expected = v.fold.expected()
	if err := v.readTopic(ctx, v.opts.EventsTopic, v.indexEvent); err != nil {
		return err
	}
	v.checkEvents()
	if err := v.readTopic(ctx, v.opts.DLQTopic, v.matchDLQ); err != nil {
		return err
	}
	v.checkDLQ()
	if !v.opts.Payments {
		return nil
	}
	if err := v.readTopic(ctx, v.opts.PaymentsTopic, v.matchPayment); err != nil {
		return err
	}
	v.checkPayments()
	return v.readTopic(ctx, v.opts.PaymentsDLQTopic, v.rejectPaymentDLQ)
}

// where formats a record position.
func where(topic string, partition int32, offset int64) string {
	return fmt.Sprintf("%s[%d]@%d", topic, partition, offset)
}
