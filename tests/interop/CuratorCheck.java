// Apache Curator 5 (Debian's libcurator-*-java) against an ensemble, the way Spark's standalone
// masters use it: persisted records under parents created as containers, a LeaderLatch handing
// leadership over, and an InterProcessMutex. Usage: java CuratorCheck host:port,host:port,...
// Prints "curator ok" and exits 0, or names what failed and exits 1.

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAILED: " + what);
            System.exit(1);
        }
    }

    // ZooKeeper orders each session's own reads after its writes, not another session's: a
    // second client may sit on a server that has not applied the write yet. As a ZooKeeper
    // client must, it syncs before reading what another client just wrote.
    static void syncWith(CuratorFramework c, String path) throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        c.sync().inBackground((client, event) -> done.countDown()).forPath(path);
        check(done.await(20, TimeUnit.SECONDS), "sync " + path);
    }

    static CuratorFramework client(String hosts) throws InterruptedException {
        CuratorFramework c = CuratorFrameworkFactory.newClient(hosts, 10000, 5000, new ExponentialBackoffRetry(100, 3));
        c.start();
        check(c.blockUntilConnected(20, TimeUnit.SECONDS), "connect to " + hosts);
        return c;
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework a = client(args[0]);
        CuratorFramework b = client(args[0]);

        byte[] record = "worker-1".getBytes(StandardCharsets.UTF_8);
        a.create().creatingParentContainersIfNeeded().forPath("/spark/master_status/worker_1", record);
        syncWith(b, "/spark/master_status/worker_1");
        check(new String(b.getData().forPath("/spark/master_status/worker_1"), StandardCharsets.UTF_8).equals("worker-1"), "read a persisted record");
        List<String> records = b.getChildren().forPath("/spark/master_status");
        check(records.contains("worker_1"), "list persisted records: " + records);

        LeaderLatch first = new LeaderLatch(a, "/spark/leader_election", "master-a");
        LeaderLatch second = new LeaderLatch(b, "/spark/leader_election", "master-b");
        first.start();
        check(first.await(20, TimeUnit.SECONDS), "the first master is elected");
        second.start();
        check(!second.await(1, TimeUnit.SECONDS), "the second master stays standby");
        first.close();
        check(second.await(20, TimeUnit.SECONDS), "the second master takes over");
        second.close();

        InterProcessMutex mutex = new InterProcessMutex(a, "/locks/recovery");
        check(mutex.acquire(20, TimeUnit.SECONDS), "acquire a mutex");
        InterProcessMutex other = new InterProcessMutex(b, "/locks/recovery");
        check(!other.acquire(500, TimeUnit.MILLISECONDS), "the mutex excludes a second holder");
        mutex.release();
        check(other.acquire(20, TimeUnit.SECONDS), "the mutex is released");
        other.release();

        a.delete().deletingChildrenIfNeeded().forPath("/spark/master_status");
        a.close();
        b.close();
        System.out.println("curator ok");
        System.exit(0);
    }
}
