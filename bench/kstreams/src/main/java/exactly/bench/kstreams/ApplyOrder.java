package exactly.bench.kstreams;

import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * ApplyOrder is examples/orders' applyOrder: it applies an order to its
 * customer and emits the event, drops an upstream duplicate (an order id
 * already applied for the same customer) and sends malformed orders to the
 * dead-letter sink with their original key and value and the exactly.*
 * headers. Decoding follows examples/orders' DecodeOrder and Validate.
 */
final class ApplyOrder implements Processor<String, byte[], String, byte[]> {
  static final String EVENTS = "events";
  static final String DLQ = "dlq";

  private static final ObjectMapper JSON = new ObjectMapper();
  // time.RFC3339 as Go's time.Parse reads it: seconds required, fraction optional.
  private static final Pattern RFC3339 =
      Pattern.compile("\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})");

  private final long commitEvery;
  private long processed;
  private ProcessorContext<String, byte[]> ctx;
  private KeyValueStore<String, String> customers;
  private KeyValueStore<String, String> orderIds;

  ApplyOrder(long commitEvery) {
    this.commitEvery = commitEvery;
  }

  @Override
  public void init(ProcessorContext<String, byte[]> context) {
    ctx = context;
    customers = context.getStateStore(OrdersApp.STORE_CUSTOMERS);
    orderIds = context.getStateStore(OrdersApp.STORE_ORDER_IDS);
  }

  @Override
  public void process(Record<String, byte[]> r) {
    try {
      apply(r);
    } catch (Malformed m) {
      deadLetter(r, m.getMessage());
    }
    if (commitEvery > 0 && ++processed % commitEvery == 0) {
      ctx.commit();
    }
  }

  private void apply(Record<String, byte[]> r) throws Malformed {
    String key = r.key() == null ? "" : r.key();
    Order o = Order.decode(r.value());
    o.validate(key);
    String owner = orderIds.get(o.orderId);
    if (owner != null && owner.equals(key)) {
      return; // upstream duplicate
    }
    if (owner != null) {
      throw new Malformed("order_id \"" + o.orderId + "\" was applied for customer \"" + owner + "\"");
    }
    long[] c = parseCustomer(customers.get(key));
    c[0]++;
    c[1] += o.amountCents;
    customers.put(key, "{\"order_count\":" + c[0] + ",\"total_cents\":" + c[1] + "}");
    orderIds.put(o.orderId, key);
    ObjectNode ev = JSON.createObjectNode();
    ev.put("order_id", o.orderId);
    ev.put("customer_id", o.customerId);
    ev.put("amount_cents", o.amountCents);
    ev.put("customer_order_count", c[0]);
    ev.put("customer_total_cents", c[1]);
    ctx.forward(r.withValue(ev.toString().getBytes(StandardCharsets.UTF_8)), EVENTS);
  }

  private void deadLetter(Record<String, byte[]> r, String reason) {
    Record<String, byte[]> out = r.withHeaders(r.headers());
    out.headers().add("exactly.error", OrdersApp.utf8(reason));
    RecordMetadata md = ctx.recordMetadata().orElseThrow();
    out.headers().add("exactly.source.topic", OrdersApp.utf8(md.topic()));
    out.headers().add("exactly.source.partition", OrdersApp.utf8(Integer.toString(md.partition())));
    out.headers().add("exactly.source.offset", OrdersApp.utf8(Long.toString(md.offset())));
    ctx.forward(out, DLQ);
  }

  /** parseCustomer reads the customers store's value: {"order_count":N,"total_cents":M}. */
  private static long[] parseCustomer(String v) {
    if (v == null) {
      return new long[2];
    }
    int a = v.indexOf(':');
    int comma = v.indexOf(',', a);
    int b = v.indexOf(':', comma);
    return new long[] {
      Long.parseLong(v.substring(a + 1, comma)), Long.parseLong(v.substring(b + 1, v.length() - 1))
    };
  }

  /** Malformed marks an order that goes to the dead-letter topic. */
  static final class Malformed extends Exception {
    Malformed(String msg) {
      super(msg, null, false, false);
    }
  }

  /** Order is examples/orders' Order. */
  static final class Order {
    String orderId;
    String customerId;
    long amountCents;

    static Order decode(byte[] value) throws Malformed {
      JsonNode n;
      try {
        n = value == null ? null : JSON.readTree(value);
      } catch (Exception e) {
        throw new Malformed("decoding order: " + e.getMessage());
      }
      if (n != null && !n.isObject() && !n.isNull()) {
        throw new Malformed("decoding order: not an object");
      }
      Order o = new Order();
      o.orderId = text(n, "order_id");
      o.customerId = text(n, "customer_id");
      JsonNode amount = field(n, "amount_cents");
      if (!amount.isIntegralNumber() || !amount.canConvertToLong()) {
        throw new Malformed("decoding order: amount_cents is not an int64");
      }
      o.amountCents = amount.longValue();
      String created = text(n, "created_at");
      try {
        if (!RFC3339.matcher(created).matches()) {
          throw new IllegalArgumentException("not RFC 3339");
        }
        OffsetDateTime.parse(created);
      } catch (RuntimeException e) {
        throw new Malformed("decoding order: created_at: " + e.getMessage());
      }
      return o;
    }

    private static JsonNode field(JsonNode n, String name) throws Malformed {
      JsonNode f = n == null ? null : n.get(name);
      if (f == null || f.isNull()) {
        throw new Malformed("decoding order: missing field " + name);
      }
      return f;
    }

    private static String text(JsonNode n, String name) throws Malformed {
      JsonNode f = field(n, name);
      if (!f.isTextual()) {
        throw new Malformed("decoding order: " + name + " is not a string");
      }
      return f.textValue();
    }

    void validate(String key) throws Malformed {
      if (orderId.isEmpty()) {
        throw new Malformed("order_id is empty");
      } else if (customerId.isEmpty()) {
        throw new Malformed("customer_id is empty");
      } else if (!customerId.equals(key)) {
        throw new Malformed("customer_id \"" + customerId + "\" differs from record key \"" + key + "\"");
      } else if (amountCents <= 0) {
        throw new Malformed("amount_cents " + amountCents + " is not positive");
      }
    }
  }
}
