// Embedded Neo4j Community with Bolt on a loopback address and auth disabled, for the
// integration tests and benchmarks of Knowledge OS. Started by scripts/services/neo4j.sh.
//
// Usage: java -cp lib/*:classes KosNeo4j <home-dir> [host] [port] [pagecache-mb]
// Prints "KOS_NEO4J_READY bolt://host:port" once the default database is available and
// runs until killed (SIGTERM runs a clean shutdown).
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;

public final class KosNeo4j {
    private KosNeo4j() {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length < 1) {
            System.err.println("usage: KosNeo4j <home-dir> [host] [port] [pagecache-mb]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        String host = args.length > 1 ? args[1] : "127.0.0.1";
        int port = args.length > 2 ? Integer.parseInt(args[2]) : 7687;
        long pagecacheMb = args.length > 3 ? Long.parseLong(args[3]) : 256L;

        DatabaseManagementService service = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, pagecacheMb * 1024L * 1024L)
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            service.shutdown();
            stopped.countDown();
        }, "kos-neo4j-shutdown"));
        GraphDatabaseService db = service.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        db.executeTransactionally("RETURN 1");
        System.out.println("KOS_NEO4J_READY bolt://" + host + ":" + port);
        System.out.flush();
        stopped.await();
    }
}
