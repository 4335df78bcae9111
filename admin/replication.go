package admin

import (
	"fmt"
	"slices"
	"strings"
)

// replicationFindings grades the replication of r.Partitions, one finding
// per topic and kind so that a broker down does not print a line per
// partition:
//
//   - offline (no leader, or a partition error): critical, nothing can
//     read or write it;
//   - fewer in-sync replicas than min.insync.replicas: critical, every
//     acks=all write (every transaction of the pipeline) fails;
//   - in-sync replicas down to min.insync.replicas: warning, one more
//     replica lost stops writes;
//   - under-replicated otherwise: warning.
func replicationFindings(r *Report) {
	type key struct {
		topic string
		kind  int
	}
	const (
		offline = iota
		belowMin
		atMin
		under
	)
	found := map[key][]string{}
	var order []key
	note := func(k key, what string) {
		if _, ok := found[k]; !ok {
			order = append(order, k)
		}
		found[k] = append(found[k], what)
	}
	for _, p := range r.Partitions {
		isr, reps := len(p.ISR), len(p.Replicas)
		switch {
		case p.Error != "" || p.Leader < 0:
			note(key{p.Topic, offline}, fmt.Sprintf("%d (leader %d%s)", p.Partition, p.Leader, errSuffix(p.Error)))
		case p.MinISR > 0 && isr < p.MinISR:
			note(key{p.Topic, belowMin}, fmt.Sprintf("%d (isr %v of %v)", p.Partition, p.ISR, p.Replicas))
		case p.MinISR > 0 && isr == p.MinISR && isr < reps:
			note(key{p.Topic, atMin}, fmt.Sprintf("%d (isr %v of %v)", p.Partition, p.ISR, p.Replicas))
		case isr < reps:
			note(key{p.Topic, under}, fmt.Sprintf("%d (isr %v of %v%s)", p.Partition, p.ISR, p.Replicas, offlineSuffix(p.Offline)))
		}
	}
	for _, k := range order {
		ps := strings.Join(found[k], ", ")
		minISR := minISROf(r.Partitions, k.topic)
		switch k.kind {
		case offline:
			r.add(Critical, CheckReplication, k.topic, "offline partitions: %s; nothing can read or write them", ps)
		case belowMin:
			r.add(Critical, CheckReplication, k.topic, "partitions below min.insync.replicas=%d: %s; every transaction writing them fails", minISR, ps)
		case atMin:
			r.add(Warning, CheckReplication, k.topic, "partitions at min.insync.replicas=%d: %s; one more replica lost stops writes", minISR, ps)
		case under:
			r.add(Warning, CheckReplication, k.topic, "under-replicated partitions: %s", ps)
		}
	}
}

func minISROf(ps []Partition, topic string) int {
	i := slices.IndexFunc(ps, func(p Partition) bool { return p.Topic == topic })
	if i < 0 {
		return 0
	}
	return ps[i].MinISR
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ", " + e
}

func offlineSuffix(off []int32) string {
	if len(off) == 0 {
		return ""
	}
	return fmt.Sprintf(", offline %v", off)
}
