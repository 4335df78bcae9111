// Package bench measures the order pipeline of the reference application:
// what `exactly bench` runs and prints.
//
// One Run, over one input produced once (orders.Produce), measures
//
//   - throughput (input records/s, from the start of the instances until the
//     group's committed input records reach the input count) of the
//     exactly-once pipeline, processor.New(orders.OrderTopologyFor(...)), at
//     every transaction size and commit interval asked for;
//   - at the same settings, the ceiling: a bare kgo GroupTransactSession loop
//     that decodes nothing and keeps no state, but consumes the same input
//     and produces, in transactions of the same size, the same records the
//     pipeline produces (per input one event and one record in each of the
//     two changelogs, customers and order ids, of the pipeline's exact
//     sizes, plus one offset record per partition, changelog and
//     transaction);
//   - at the same settings, the same topology at least once: an idempotent
//     producer without transactions, state applied to Pebble per batch and
//     offsets committed only after the batch's outputs were acknowledged;
//   - end-to-end latency, from an order's produce timestamp to its event
//     being read by a read_committed consumer, at a fixed rate below
//     saturation;
//   - restore rate and time to ready for the changelogs of N customers (one
//     order each), from an empty state directory and from the local
//     checkpoint;
//   - peak RSS (VmHWM) of an `exactly run` child process holding those N
//     customers;
//   - throughput with several instances in one group.
//
// With Config.Suite set to SuiteMirror, Run measures the mirror instead
// (package mirror, through its public API only): throughput and MB/s of
// one mirror instance over a pre-filled source topic at every transaction
// size and commit interval, next to a bare transactional copy loop at the
// same settings; end-to-end latency at a fixed offered rate; and several
// instances. See mirror.go.
//
// Every run uses a fresh consumer group and fresh output and changelog
// topics, which are deleted after it, so each consumes the same input from
// its start. The cluster is an embedded kfake cluster unless Config.Brokers
// names a real one.
package bench
