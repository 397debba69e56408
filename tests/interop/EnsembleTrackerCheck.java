// Apache Curator 5's EnsembleTracker against an ensemble: it watches /zookeeper/config and,
// once a reconfig removes a server, hands Curator the new connection string.
// Usage: java EnsembleTrackerCheck host:port,... super:password removedHost:port removedId
// Prints "tracker ok <connection string>" and exits 0, or names what failed and exits 1.

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class EnsembleTrackerCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAILED: " + what);
            System.exit(1);
        }
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
            .connectString(args[0])
            .retryPolicy(new ExponentialBackoffRetry(100, 3))
            .authorization("digest", args[1].getBytes(StandardCharsets.UTF_8))
            .ensembleTracker(true)
            .build();
        c.start();
        check(c.blockUntilConnected(20, TimeUnit.SECONDS), "connect to " + args[0]);
        String removed = args[2];
        String id = args[3];
        check(c.getZookeeperClient().getCurrentConnectionString().contains(removed), "the removed server is listed at first");
        c.reconfig().leaving(id).forEnsemble();
        long deadline = System.currentTimeMillis() + 20000;
        String now = c.getZookeeperClient().getCurrentConnectionString();
        while (now.contains(removed) && System.currentTimeMillis() < deadline) {
            Thread.sleep(50);
            now = c.getZookeeperClient().getCurrentConnectionString();
        }
        check(!now.contains(removed), "the tracker still lists " + removed + ": " + now);
        System.out.println("tracker ok " + now);
        c.close();
    }
}
