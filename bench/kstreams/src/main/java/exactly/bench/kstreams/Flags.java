package exactly.bench.kstreams;

import java.util.HashMap;
import java.util.Map;

/** Flags parses --name value pairs; a bad command line exits 2 naming the flag. */
final class Flags {
  private final Map<String, String> values = new HashMap<>();

  static Flags parse(String[] args) {
    Flags f = new Flags();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("--")) {
        usage("unexpected argument " + a);
      }
      String name = a.substring(2);
      int eq = name.indexOf('=');
      if (eq >= 0) {
        f.values.put(name.substring(0, eq), name.substring(eq + 1));
      } else if (i + 1 < args.length) {
        f.values.put(name, args[++i]);
      } else {
        usage("--" + name + ": needs a value");
      }
    }
    return f;
  }

  boolean has(String name) {
    return values.containsKey(name);
  }

  String get(String name) {
    return values.get(name);
  }

  String getOr(String name, String def) {
    return values.getOrDefault(name, def);
  }

  String require(String name) {
    String v = values.get(name);
    if (v == null || v.isEmpty()) {
      usage("--" + name + ": is required");
    }
    return v;
  }

  static void usage(String msg) {
    System.err.println("kstreams-peer: " + msg);
    System.exit(2);
  }
}
