// A small program for the JFR tests (format/jfr.test.cpp, tests/integration/test_ingest_formats.py):
// burns CPU in two methods and allocates large arrays (one method and the allocations reached
// through a lambda, so that both execution and allocation samples carry its frame), contends on a
// monitor and parks, for the number of milliseconds given as its argument.
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

public class Burn {
  static final Object lock = new Object();
  static volatile long sink;
  static List<byte[]> keep = new ArrayList<>();

  static long spin(long n) { long x = 0; for (long i = 0; i < n; i++) x += i * 31 ^ (x >>> 3); return x; }
  static void hotA() { sink += spin(2_000_000); }
  static void hotB() { sink += spin(1_000_000); }
  static void allocate() {
    for (int i = 0; i < 200; i++) { keep.add(new byte[64 * 1024]); if (keep.size() > 50) keep.clear(); }
  }
  static void contend() throws Exception {
    Thread t = new Thread(() -> { synchronized (lock) { try { Thread.sleep(30); } catch (InterruptedException e) {} } });
    t.start(); Thread.sleep(5);
    synchronized (lock) { sink++; }
    t.join();
  }
  public static void main(String[] args) throws Exception {
    long end = System.currentTimeMillis() + Long.parseLong(args[0]);
    while (System.currentTimeMillis() < end) {
      Runnable a = () -> { hotA(); allocate(); };
      a.run(); hotB(); contend(); LockSupport.parkNanos(2_000_000);
    }
  }
}
