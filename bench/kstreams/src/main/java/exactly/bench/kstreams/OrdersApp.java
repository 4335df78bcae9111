package exactly.bench.kstreams;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.state.Stores;

/**
 * The order application of examples/orders (OrderTopology) on Kafka Streams
 * with processing.guarantee=exactly_once_v2: orders keyed by customer id, a
 * customers store (count, total), an order-ids store for duplicate
 * detection, one event per applied order, malformed orders to the
 * dead-letter topic with the exactly.* headers.
 *
 * <p>Flags (all required but the last three):
 * --brokers a,b --application-id ID --orders T --events T --dlq T
 * --commit-interval-ms N --threads N [--state-dir D] [--commit-every N]
 * [--replication-factor N].
 *
 * <p>Everything else stays at Kafka Streams' defaults. --commit-every N asks
 * for a commit (ProcessorContext.commit) after every N records a task
 * processed, the closest Kafka Streams gets to capping a transaction's
 * records (exactly's MaxRecordsPerTxn): a thread still commits all its
 * tasks in one transaction, at the next loop iteration.
 */
public final class OrdersApp {
  static final String STORE_CUSTOMERS = "customers";
  static final String STORE_ORDER_IDS = "order-ids";

  public static void main(String[] args) throws Exception {
    Flags f = Flags.parse(args);
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, f.require("application-id"));
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, f.require("brokers"));
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, f.require("commit-interval-ms"));
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, f.require("threads"));
    if (f.has("state-dir")) {
      p.put(StreamsConfig.STATE_DIR_CONFIG, f.get("state-dir"));
    }
    if (f.has("replication-factor")) {
      p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, f.get("replication-factor"));
    }
    long commitEvery = Long.parseLong(f.getOr("commit-every", "0"));

    KafkaStreams streams = new KafkaStreams(
        topology(f.require("orders"), f.require("events"), f.require("dlq"), commitEvery), p);
    CountDownLatch stopped = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      System.err.println("kstreams-peer: state " + before + " -> " + now);
      if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
        stopped.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(30));
      stopped.countDown();
    }));
    streams.start();
    stopped.await();
    if (streams.state() == KafkaStreams.State.ERROR) {
      System.exit(1);
    }
  }

  /** topology builds the order application's processor topology. */
  static Topology topology(String orders, String events, String dlq, long commitEvery) {
    Topology t = new Topology();
    t.addSource("orders", Serdes.String().deserializer(), Serdes.ByteArray().deserializer(), orders);
    t.addProcessor("apply", () -> new ApplyOrder(commitEvery), "orders");
    // Caching on, as the DSL's stores have it by default (statestore.cache.max.bytes).
    t.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(STORE_CUSTOMERS),
        Serdes.String(), Serdes.String()).withCachingEnabled(), "apply");
    t.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(STORE_ORDER_IDS),
        Serdes.String(), Serdes.String()).withCachingEnabled(), "apply");
    t.addSink(ApplyOrder.EVENTS, events, Serdes.String().serializer(), Serdes.ByteArray().serializer(), "apply");
    t.addSink(ApplyOrder.DLQ, dlq, Serdes.String().serializer(), Serdes.ByteArray().serializer(), "apply");
    return t;
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
