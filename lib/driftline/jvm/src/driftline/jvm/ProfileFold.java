package driftline.jvm;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.catalyst.CatalystTypeConverters;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.classic.Dataset;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * The per-task fold of driftline's profile pass (driftline.profiling.fold.core_pass), on the JVM.
 *
 * <p>Input: a frame whose columns are {@code c0..c<n-1>} (double for numeric columns, string for categorical
 * ones), then the {@code xxhash64} (bigint) of each categorical column with tail buckets, and, when grouped, a
 * column with the group key (its ordinal is in the spec). Output: one row per task and group,
 * {@code (part, [__group__], add, lo, hi, mom)}, in exactly the layout the Python fold writes (see
 * {@code layout} in driftline.profiling.accumulate), so the driver merges either kind of row the same way.
 */
public final class ProfileFold {
  private ProfileFold() {}

  /** The per-task rows of {@code frame} profiled against {@code specJson} (see {@link Spec}). */
  public static org.apache.spark.sql.Dataset<Row> fold(Dataset<Row> frame, String specJson) throws Exception {
    Spec spec = Spec.parse(specJson);
    StructType in = frame.schema();
    DataType keyType = spec.grouped ? in.fields()[spec.key].dataType() : null;
    List<StructField> fields = new ArrayList<>();
    fields.add(DataTypes.createStructField("part", DataTypes.IntegerType, false));
    if (spec.grouped) {
      fields.add(DataTypes.createStructField("__group__", keyType, true));
    }
    for (String f : new String[] {"add", "lo", "hi", "mom"}) {
      fields.add(DataTypes.createStructField(f, DataTypes.createArrayType(DataTypes.DoubleType, false), false));
    }
    JavaRDD<InternalRow> rows = frame.queryExecution().toRdd().toJavaRDD();
    JavaRDD<Row> out = rows.mapPartitions(new Fold(spec, keyType));
    return frame.sparkSession().createDataFrame(out, DataTypes.createStructType(fields));
  }

  /** What to compute: per column, numeric edges or categorical top-K values; whether grouped. */
  static final class Spec implements Serializable {
    private static final long serialVersionUID = 1L;
    boolean grouped;
    int key;
    Column[] columns;

    static Spec parse(String json) throws Exception {
      // a membership filter travels as one base64 string of up to ~22 M characters: above Jackson's default cap
      JsonFactory factory = JsonFactory.builder()
          .streamReadConstraints(StreamReadConstraints.builder().maxStringLength(Integer.MAX_VALUE).build())
          .build();
      JsonNode root = new ObjectMapper(factory).readTree(json);
      Spec spec = new Spec();
      spec.grouped = root.get("grouped").asBoolean();
      JsonNode cols = root.get("columns");
      spec.key = root.has("key") ? root.get("key").asInt() : cols.size();
      spec.columns = new Column[cols.size()];
      for (int i = 0; i < cols.size(); i++) {
        JsonNode c = cols.get(i);
        Column col = new Column();
        col.numeric = "numeric".equals(c.get("kind").asText());
        if (col.numeric) {
          JsonNode e = c.get("edges");
          col.edges = new double[e.size()];
          for (int k = 0; k < e.size(); k++) {
            col.edges[k] = e.get(k).asDouble();
          }
        } else {
          JsonNode v = c.get("categories");
          col.categories = new String[v.size()];
          for (int k = 0; k < v.size(); k++) {
            col.categories[k] = v.get(k).asText();
          }
          if (c.has("buckets")) {
            col.buckets = c.get("buckets").asInt();
            col.hashOrdinal = c.get("hash").asInt();
            JsonNode m = c.get("membership");
            col.membership = new Membership(m.get("bits").asLong(), m.get("hashes").asInt(),
                                            java.util.Base64.getDecoder().decode(m.get("words").asText()));
          }
        }
        spec.columns[i] = col;
      }
      return spec;
    }
  }

  static final class Column implements Serializable {
    private static final long serialVersionUID = 1L;
    boolean numeric;
    double[] edges;
    String[] categories;
    int buckets;               // categorical: tail buckets beyond the top K (0: none)
    int hashOrdinal = -1;      // ... the frame column holding the value's xxhash64
    Membership membership;     // ... the reference's categories (driftline.profiling.membership)
  }

  /** The Bloom filter of driftline.profiling.membership: probe i of hash h is (lo(h) + i * hi(h)) mod bits. */
  static final class Membership implements Serializable {
    private static final long serialVersionUID = 1L;
    final long mask;
    final int hashes;
    final long[] words;

    Membership(long bits, int hashes, byte[] bytes) {
      this.mask = bits - 1;
      this.hashes = hashes;
      words = new long[bytes.length / 8];
      java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(words);
    }

    boolean mightContain(long h) {
      long lo = h & 0xFFFFFFFFL;
      long hi = h >>> 32;
      for (int i = 1; i <= hashes; i++) {
        long pos = (lo + i * hi) & mask;
        if (((words[(int) (pos >>> 6)] >>> (pos & 63)) & 1L) == 0) {
          return false;
        }
      }
      return true;
    }
  }

  static final class Fold implements FlatMapFunction<Iterator<InternalRow>, Row> {
    private static final long serialVersionUID = 1L;
    private final Spec spec;
    private final DataType keyType;

    Fold(Spec spec, DataType keyType) {
      this.spec = spec;
      this.keyType = keyType;
    }

    @Override
    public Iterator<Row> call(Iterator<InternalRow> it) {
      Shared shared = new Shared(spec);
      Map<Object, Acc> accs = new LinkedHashMap<>();
      int keyOrdinal = spec.key;
      Acc last = null;                 // rows of one group tend to come in runs
      while (it.hasNext()) {
        InternalRow r = it.next();
        Acc acc;
        if (!spec.grouped) {
          acc = last != null ? last : (last = accs.computeIfAbsent(null, k -> new Acc(shared)));
        } else {
          Object key = r.isNullAt(keyOrdinal) ? null : r.get(keyOrdinal, keyType);
          if (last != null && Objects.equals(key, last.key)) {
            acc = last;
          } else {
            acc = accs.get(key);
            if (acc == null) {
              acc = new Acc(shared);
              acc.key = key instanceof UTF8String ? ((UTF8String) key).clone() : key;  // the row's bytes are reused
              accs.put(acc.key, acc);
            }
            last = acc;
          }
        }
        acc.add(r);
      }
      int part = TaskContext.getPartitionId();
      List<Row> out = new ArrayList<>(accs.size());
      for (Map.Entry<Object, Acc> e : accs.entrySet()) {
        Acc acc = e.getValue();
        acc.flushAll();
        Object[] values = spec.grouped
            ? new Object[] {part, CatalystTypeConverters.convertToScala(e.getKey(), keyType),
                            acc.addSlots(), acc.lo, acc.hi, acc.mom}
            : new Object[] {part, acc.addSlots(), acc.lo, acc.hi, acc.mom};
        out.add(RowFactory.create(values));
      }
      return out.iterator();
    }
  }

  /** Per-task lookups shared by every group's accumulator. */
  static final class Shared {
    final Column[] columns;
    final double[][] search;   // edges with the last one nudged up one ulp: cell = #(search <= x)
    final double[][] inner;    // each cell's inner edge
    final CategoryIndex[] categoryIndex;

    Shared(Spec spec) {
      columns = spec.columns;
      search = new double[columns.length][];
      inner = new double[columns.length][];
      categoryIndex = new CategoryIndex[columns.length];
      for (int i = 0; i < columns.length; i++) {
        Column c = columns[i];
        if (c.numeric && c.edges.length > 0) {
          double[] e = c.edges;
          int n = e.length - 1;
          double[] s = new double[n + 1];
          System.arraycopy(e, 0, s, 0, n);
          s[n] = Math.nextUp(e[n]);
          double[] in = new double[n + 2];
          in[0] = e[0];
          System.arraycopy(e, 0, in, 1, n);
          in[n + 1] = e[n];
          search[i] = s;
          inner[i] = in;
        } else if (!c.numeric) {
          categoryIndex[i] = new CategoryIndex(c.categories);
        }
      }
    }
  }

  /**
   * Top-K category → rank, probed by a string's first 8 bytes and length (UTF8String.getPrefix: no hashing of
   * the bytes, no boxing); a candidate is confirmed byte for byte unless those 8 bytes are the whole string.
   */
  static final class CategoryIndex {
    final int size;
    private final UTF8String[] values;
    private final long[] prefixes;
    private final int[] slots;     // open addressing: rank, or -1 for an empty slot
    private final int mask;

    CategoryIndex(String[] categories) {
      values = new UTF8String[categories.length];
      prefixes = new long[categories.length];
      int capacity = Integer.highestOneBit(Math.max(4 * categories.length, 2) - 1) << 1;
      slots = new int[capacity];
      java.util.Arrays.fill(slots, -1);
      mask = capacity - 1;
      int n = 0;
      for (String category : categories) {
        UTF8String v = UTF8String.fromString(category);
        if (find(v) >= 0) {
          continue;                // a duplicate keeps its first rank
        }
        values[n] = v;
        prefixes[n] = v.getPrefix();
        int h = slot(prefixes[n], v.numBytes());
        while (slots[h] >= 0) {
          h = (h + 1) & mask;
        }
        slots[h] = n++;
      }
      size = n;
    }

    private int slot(long prefix, int numBytes) {
      long h = (prefix ^ ((long) numBytes << 56)) * 0x9E3779B97F4A7C15L;
      return (int) (h >>> 40) & mask;
    }

    /** The rank of {@code v}, or -1 when it is not a top-K category. */
    int find(UTF8String v) {
      long prefix = v.getPrefix();
      int numBytes = v.numBytes();
      for (int h = slot(prefix, numBytes); slots[h] >= 0; h = (h + 1) & mask) {
        int k = slots[h];
        if (prefixes[k] == prefix && values[k].numBytes() == numBytes && (numBytes <= 8 || values[k].equals(v))) {
          return k;
        }
      }
      return -1;
    }
  }

  /** One group's aggregates within a task; finite values are buffered and folded a block at a time. */
  static final class Acc {
    private static final int BLOCK = 4096;
    private static final int LINEAR_SEARCH = 24;   // edges up to which counting beats a binary search
    final Shared shared;
    Object key;                // the group key (a stable copy), for grouped folds
    long rows;
    final long[] nulls;
    final long[] nans;
    final long[] posInf;
    final long[] negInf;
    final long[] count;        // categorical: non-null values
    final long[][] cells;      // numeric: per cell (underflow, bins, overflow) finite counts; categorical: top-K
    final long[][] tail;       // categorical with tail buckets: values beyond the top K per bucket
    final long[] unseen;       // ... of which the membership filter has certainly never seen
    final double[][] offsets;  // numeric: per cell offset sums
    final double[][] buffer;
    final int[] filled;
    final int[] numericSlot;   // column -> index into lo/hi/mom, -1 for categorical
    final double[] lo;
    final double[] hi;
    final double[] mom;

    Acc(Shared shared) {
      this.shared = shared;
      int n = shared.columns.length;
      nulls = new long[n];
      nans = new long[n];
      posInf = new long[n];
      negInf = new long[n];
      count = new long[n];
      unseen = new long[n];
      tail = new long[n][];
      cells = new long[n][];
      offsets = new double[n][];
      buffer = new double[n][];
      filled = new int[n];
      numericSlot = new int[n];
      int numeric = 0;
      for (int i = 0; i < n; i++) {
        Column c = shared.columns[i];
        if (c.numeric) {
          numericSlot[i] = numeric++;
          buffer[i] = new double[BLOCK];
          if (shared.search[i] != null) {
            cells[i] = new long[shared.search[i].length + 1];
            offsets[i] = new double[shared.search[i].length + 1];
          }
        } else {
          numericSlot[i] = -1;
          cells[i] = new long[c.categories.length];
          if (c.buckets > 0) {
            tail[i] = new long[c.buckets];
          }
        }
      }
      lo = new double[numeric];
      hi = new double[numeric];
      mom = new double[3 * numeric];
      java.util.Arrays.fill(lo, Double.POSITIVE_INFINITY);
      java.util.Arrays.fill(hi, Double.NEGATIVE_INFINITY);
    }

    void add(InternalRow r) {
      rows++;
      Column[] cols = shared.columns;
      for (int i = 0; i < cols.length; i++) {
        if (r.isNullAt(i)) {
          nulls[i]++;
        } else if (cols[i].numeric) {
          double v = r.getDouble(i);
          if (v - v == 0.0) {           // finite
            buffer[i][filled[i]++] = v;
            if (filled[i] == BLOCK) {
              flush(i);
            }
          } else if (v != v) {
            nans[i]++;
          } else if (v > 0) {
            posInf[i]++;
          } else {
            negInf[i]++;
          }
        } else {
          count[i]++;
          CategoryIndex index = shared.categoryIndex[i];
          int k = index.size > 0 ? index.find(r.getUTF8String(i)) : -1;
          if (k >= 0) {
            cells[i][k]++;
          } else if (tail[i] != null) {
            long h = r.getLong(cols[i].hashOrdinal);
            tail[i][(int) Math.floorMod(h, (long) cols[i].buckets)]++;
            if (!cols[i].membership.mightContain(h)) {
              unseen[i]++;
            }
          }
        }
      }
    }

    void flushAll() {
      for (int i = 0; i < shared.columns.length; i++) {
        if (shared.columns[i].numeric && filled[i] > 0) {
          flush(i);
        }
      }
    }

    private void flush(int i) {
      double[] x = buffer[i];
      int m = filled[i];
      filled[i] = 0;
      int j = numericSlot[i];
      double min = x[0];
      double max = x[0];
      double sum = 0.0;
      for (int k = 0; k < m; k++) {
        double v = x[k];
        sum += v;
        if (v < min) {
          min = v;
        }
        if (v > max) {
          max = v;
        }
      }
      double mean = sum / m;
      double m2 = 0.0;
      for (int k = 0; k < m; k++) {
        double d = x[k] - mean;
        m2 += d * d;
      }
      lo[j] = Math.min(lo[j], min);
      hi[j] = Math.max(hi[j], max);
      double n0 = mom[3 * j];
      double total = n0 + m;
      double delta = mean - mom[3 * j + 1];
      mom[3 * j + 2] += m2 + delta * delta * n0 * m / total;
      mom[3 * j + 1] += delta * m / total;
      mom[3 * j] = total;
      double[] s = shared.search[i];
      if (s == null) {
        return;
      }
      double[] in = shared.inner[i];
      long[] c = cells[i];
      double[] off = offsets[i];
      boolean linear = s.length <= LINEAR_SEARCH;
      for (int k = 0; k < m; k++) {
        double v = x[k];
        int cell = 0;                  // #(s <= v): the first index with s[idx] > v, in [0, s.length]
        if (linear) {                  // few edges: count without branches the CPU must guess
          for (double edge : s) {
            cell += edge <= v ? 1 : 0;
          }
        } else {
          int high = s.length;
          while (cell < high) {
            int mid = (cell + high) >>> 1;
            if (s[mid] <= v) {
              cell = mid + 1;
            } else {
              high = mid;
            }
          }
        }
        c[cell]++;
        off[cell] += Math.abs(v - in[cell]);
      }
    }

    /** The additive slots in the Python fold's order (``rows``, then per column, see {@code layout} in driftline.profiling.accumulate). */
    double[] addSlots() {
      List<Double> out = new ArrayList<>();
      out.add((double) rows);
      Column[] cols = shared.columns;
      for (int i = 0; i < cols.length; i++) {
        if (cols[i].numeric) {
          out.add((double) nulls[i]);
          out.add((double) nans[i]);
          out.add((double) (posInf[i] + negInf[i]));
          long[] c = cells[i];
          if (c != null) {
            int last = c.length - 1;
            out.add((double) (c[0] + negInf[i]));
            out.add((double) (c[last] + posInf[i]));
            out.add((double) c[0]);
            out.add((double) c[last]);
            out.add(offsets[i][0]);
            out.add(offsets[i][last]);
            for (int k = 1; k < last; k++) {
              out.add((double) c[k]);
            }
            for (int k = 1; k < last; k++) {
              out.add(offsets[i][k]);
            }
          }
        } else {
          out.add((double) nulls[i]);
          out.add((double) count[i]);
          for (long k : cells[i]) {
            out.add((double) k);
          }
          if (tail[i] != null) {
            for (long k : tail[i]) {
              out.add((double) k);
            }
            out.add((double) unseen[i]);
          }
        }
      }
      double[] slots = new double[out.size()];
      for (int k = 0; k < slots.length; k++) {
        slots[k] = out.get(k);
      }
      return slots;
    }
  }
}
